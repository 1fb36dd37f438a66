"""gunicorn's threaded worker, admitting a new connection only while it has a
free thread (``--worker-class runtime.gunicorn_worker.AdmittingThreadWorker``).

Stock ``gthread`` workers accept every connection they can and queue its
request for their thread pool. Several workers share one listening socket,
so a worker whose threads are all busy still takes new connections that
another worker could answer at once, and those wait behind its queue: under
a hall's worth of phones, the slowest tenth of check-ins waited on one
worker while the other had threads to spare (bench/README.md, "portal").

This worker stops listening while every thread has a request to serve and
starts again when one is done, so a new connection stays in the kernel's
backlog until some worker can take it, whichever that is. Requests on
connections it already holds (a phone posting the form it just opened) are
still queued at once: idle keep-alive connections hold no thread and never
block admission. Everything else is gunicorn's: the event loop runs on the
worker's main thread, which is the only one that calls these methods.
"""

from gunicorn.workers.gthread import ThreadWorker


class AdmittingThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests handed to the thread pool, not finished

    def has_free_thread(self) -> bool:
        return self.in_flight < self.cfg.threads

    def set_accept_enabled(self, enabled):
        # The event loop re-enables accepting whenever the connection count
        # allows it; a worker without a free thread declines.
        super().set_accept_enabled(enabled and self.has_free_thread())

    def enqueue_req(self, conn):
        self.in_flight += 1
        super().enqueue_req(conn)
        if not self.has_free_thread():
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs):
        # Before gunicorn's, which may queue the connection again; the event
        # loop asks to accept again right after this callback.
        self.in_flight -= 1
        super().finish_request(conn, fs)
