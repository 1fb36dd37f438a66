"""Survey answers checked against the questionnaire version they answer: by
the node's portal before a response is queued, and by the hub when it counts
them (hub/surveys). The questionnaire format is hub/surveys/questionnaires.py's."""

from dataclasses import dataclass

from .records import MAX_ANSWER_TEXT

KINDS = ("scale", "single", "multi", "text")
SCALE = (1, 5)  # 5 best


@dataclass(frozen=True)
class Answers:
    """A response's answers checked against its questionnaire version:
    ``values`` kept, ``problems`` the ids of questions answered wrongly or
    required and left out."""
    values: dict
    problems: list[str]


def _fits(question: dict, value) -> bool:
    kind = question["kind"]
    if kind == "scale":
        return isinstance(value, int) and not isinstance(value, bool) and \
            SCALE[0] <= value <= SCALE[1]
    if kind == "text":
        return isinstance(value, str) and len(value) <= MAX_ANSWER_TEXT
    options = {o["id"] for o in question.get("options", ())}
    return (isinstance(value, list) and 0 < len(value) == len(set(value))
            and set(value) <= options and (kind == "multi" or len(value) == 1))


def check_answers(questionnaire: dict, answers: dict) -> Answers:
    """``answers`` (question id -> value) kept to what the questionnaire asks:
    unknown questions and invalid values dropped, each with a problem named;
    a required question left out is a problem too (the portal refuses then)."""
    values, problems = {}, []
    for q in questionnaire["questions"]:
        value = answers.get(q["id"])
        if value in (None, "", []):
            if q["required"]:
                problems.append(q["id"])
            continue
        if _fits(q, value):
            values[q["id"]] = value.strip() if isinstance(value, str) else value
        else:
            problems.append(q["id"])
    return Answers(values, problems)
