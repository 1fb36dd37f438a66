"""The central server: ingest, domain data and the web dashboard."""
