"""What a report category means for its ticket and its reporter's hours: the
due time (``due_hours``) and the volunteer hours an accepted report earns
(``credit_hours``, ``duplicate_credit_hours``), as the office sets them in
``category_settings``, with the defaults for a category it has not set.
Tickets and hours both read this; neither owns the other. The same table
names and describes each category (the dashboard's labels, Open311's
services)."""

DEFAULT_DUE_HOURS = 48.0
DEFAULT_CREDIT_HOURS = 0.5
DEFAULT_DUPLICATE_CREDIT_HOURS = 0.0


def category_settings(db, category: str) -> dict:
    row = db.conn.execute(
        "SELECT due_hours, credit_hours, duplicate_credit_hours FROM category_settings "
        "WHERE category = ?", (category,)).fetchone()
    if row is None:
        return {"due_hours": DEFAULT_DUE_HOURS, "credit_hours": DEFAULT_CREDIT_HOURS,
                "duplicate_credit_hours": DEFAULT_DUPLICATE_CREDIT_HOURS}
    return {"due_hours": row[0], "credit_hours": row[1], "duplicate_credit_hours": row[2]}


def labels(db) -> dict[str, str]:
    """Category -> its stored label, for every configured category."""
    return dict(db.conn.execute("SELECT category, label FROM category_settings"))


def list_categories(db, category: str | None = None) -> list[dict]:
    """The configured categories (or just ``category``) as the office
    describes them: label, description, keywords and group, by code."""
    sql = "SELECT category, label, description, keywords, group_name FROM category_settings"
    params = ()
    if category is not None:
        sql += " WHERE category = ?"
        params = (category,)
    return [dict(zip(("category", "label", "description", "keywords", "group_name"), row))
            for row in db.conn.execute(sql + " ORDER BY category", params)]
