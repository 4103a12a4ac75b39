"""HTML forms as a browser submits them: the login form (with its CSRF field) and the consent form.

Only what a browser would send is sent: hidden and filled-in fields, checked radio buttons and
check boxes, and the one submit button pressed. Nothing about the platform's pages is assumed
beyond HTML: the login form is the form with a password field; the consent form is the one with
an "allow"-like submit button.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

TEXT_TYPES = frozenset({"text", "email", "tel", ""})
ALLOW_WORDS = ("allow", "approve", "accept", "authorize", "authorise", "grant", "consent", "yes", "ok")


@dataclass
class Control:
    tag: str  # input, button, select, textarea
    name: str
    type: str
    value: str
    checked: bool = False


@dataclass
class Form:
    action: str
    method: str
    controls: list[Control] = field(default_factory=list)

    def has_password(self) -> bool:
        return any(c.tag == "input" and c.type == "password" for c in self.controls)

    def buttons(self) -> list[Control]:
        return [c for c in self.controls if c.type == "submit" and c.name]

    def radio_values(self, name: str | None = None) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for c in self.controls:
            if c.type == "radio" and (name is None or c.name == name):
                groups.setdefault(c.name, []).append(c.value)
        return groups

    def fields(self) -> dict[str, str]:
        """What the browser sends besides the button pressed and what the user types."""
        sent: dict[str, str] = {}
        for c in self.controls:
            if not c.name or c.type in ("submit", "button", "reset", "image", "file"):
                continue
            if c.type in ("radio", "checkbox") and not c.checked:
                continue
            sent[c.name] = c.value
        return sent

    def login_fields(self, username: str, password: str) -> dict[str, str]:
        sent = self.fields()
        user_field = next((c.name for c in self.controls if c.tag == "input" and c.type in TEXT_TYPES), "username")
        password_field = next(c.name for c in self.controls if c.type == "password")
        sent[user_field] = username
        sent[password_field] = password
        pressed = self.buttons()
        if pressed:
            sent[pressed[0].name] = pressed[0].value
        return sent

    def consent_fields(self, purpose: str | None) -> dict[str, str]:
        sent = self.fields()
        if purpose is not None:
            # The radio group offering this purpose, else the platform's own field name: the
            # server decides whether the user may choose it, as it would for a browser.
            group = next((name for name, values in self.radio_values().items() if purpose in values), None)
            sent[group or _purpose_field(self)] = purpose
        allow = self.allow_button()
        if allow is not None:
            sent[allow.name] = allow.value
        return sent

    def allow_button(self) -> Control | None:
        for control in self.buttons():
            if any(word == control.value.strip().lower() for word in ALLOW_WORDS):
                return control
        return None


def _purpose_field(form: Form) -> str:
    named = next((c.name for c in form.controls if "purpose" in c.name.lower()), None)
    return named or "purpose_of_use"


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._current = Form(attributes.get("action", ""), attributes.get("method", "get").lower())
            self.forms.append(self._current)
            return
        if self._current is None or tag not in ("input", "button", "select", "textarea"):
            return
        default_type = {"input": "text", "button": "submit"}.get(tag, tag)
        self._current.controls.append(
            Control(
                tag=tag,
                name=attributes.get("name", ""),
                type=attributes.get("type", default_type).lower(),
                value=attributes.get("value", ""),
                checked="checked" in attributes,
            )
        )

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_of(html: str) -> list[Form]:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.forms


def login_form(forms: list[Form]) -> Form | None:
    return next((f for f in forms if f.has_password()), None)


def consent_form(forms: list[Form]) -> Form | None:
    return next((f for f in forms if not f.has_password() and f.allow_button() is not None), None)
