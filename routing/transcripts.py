"""The transcript a customer gets for the commands in their mail, in the project's language.

`commands.transcript` answers each line in English, with the verbs' own messages; that
is what agents get. A German or Danish customer reads the same answers in their own
language: what a line did is said from the ticket it left behind (the status as the
workflow labels it), and why a line was refused from the rule that refused it, not by
translating the English message. Only a reason this module has no words for (a value a
verb could not read) is passed on as the verb wrote it. Mails never name a command the
workflow would refuse now, so an unknown command is answered with the ones that work.
Pure.
"""

from __future__ import annotations

from routing.commands import Outcome, Plan, transcript
from routing.context import TicketState
from routing.every_change import status_text
from routing.verbs import REGISTRY
from routing.workflow import Workflow, customer_commands

# what customers write in each language (README "Customer commands per language")
WORDS = {"de": {"close": "/erledigt", "reopen": "/wieder öffnen", "approve": "/freigeben"},
         "da": {"close": "/luk", "reopen": "/genåbn", "approve": "/godkend"}}
PRIORITIES = {"de": {1: "niedrig", 2: "normal", 3: "hoch"},
              "da": {1: "lav", 2: "normal", 3: "høj"}}

TEXT = {
    "de": {
        "done": "ausgeführt: ", "refused": "abgelehnt: ",
        "status": "Status ist jetzt „{}“", "urgent": " (als dringend markiert)",
        "priority": "Priorität ist jetzt {}", "group": "Gruppe ist jetzt {}",
        "q": "„{}“",
        "close": "Die Anfrage steht auf {}; bestätigen können Sie sie erst, wenn sie auf {} "
                 "steht.",
        "close_never": "Die Anfrage steht auf „{}“; sie wird von uns abgeschlossen.",
        "reopen": "Die Anfrage steht auf „{}“; sie kann jetzt nicht wieder geöffnet werden.",
        "approve": "Die Anfrage steht auf „{}“ und wartet gerade auf keine Freigabe.",
        "may_not": "Diesen Wert können Sie bei dieser Anfrage nicht selbst setzen.",
        "staff": "Diesen Befehl können nur unsere Mitarbeiter verwenden.",
        "unknown": "unbekannter Befehl",
        "offer": "Jetzt möglich: {}.", "none_now": "Zurzeit ist kein Befehl möglich.",
        "other": "nicht ausgeführt, weil ein anderer Befehl in dieser E-Mail abgelehnt wurde",
        "nothing": "Es wurde nichts geändert. Ihr Text ist bei der Anfrage gespeichert.",
        "or": " oder ",
    },
    "da": {
        "done": "udført: ", "refused": "afvist: ",
        "status": "status er nu \"{}\"", "urgent": " (markeret som haster)",
        "priority": "prioritet er nu {}", "group": "gruppe er nu {}",
        "q": "\"{}\"",
        "close": "Sagen står som {}; du kan først bekræfte den, når den står som {}.",
        "close_never": "Sagen står som \"{}\"; den bliver lukket af os.",
        "reopen": "Sagen står som \"{}\"; den kan ikke genåbnes nu.",
        "approve": "Sagen står som \"{}\" og venter ikke på din godkendelse lige nu.",
        "may_not": "Den værdi kan du ikke selv sætte på denne sag.",
        "staff": "Den kommando kan kun vores medarbejdere bruge.",
        "unknown": "ukendt kommando",
        "offer": "Mulige nu: {}.", "none_now": "Der er ingen mulige kommandoer lige nu.",
        "other": "ikke udført, fordi en anden kommando i denne mail blev afvist",
        "nothing": "Intet er ændret. Din tekst er gemt på sagen.",
        "or": " eller ",
    },
}


def customer_transcript(plan_: Plan, wf: Workflow, language: str) -> str:
    """The transcript text a customer of a `language` project gets (English: the
    agents' one)."""
    if language not in TEXT:
        return transcript(plan_)
    words, lines = TEXT[language], []
    state = plan_.before
    for o in plan_.outcomes:
        lines.append(f"> {o.command.line}")
        if o.ok and o.state is not None:
            lines.append(words["done"] + _done(o, state, wf, language))
            state = o.state
        else:
            lines.append(words["refused"] + _refused(o, state, wf, language))
        lines.append("")
    if plan_.outcomes and not plan_.applied:
        lines.append(words["nothing"])
    return "\n".join(lines).rstrip() + "\n"


def _done(o: Outcome, before: TicketState, wf: Workflow, language: str) -> str:
    words, after = TEXT[language], o.state or before
    if o.command.verb == "priority":
        return words["priority"].format(PRIORITIES[language].get(after.priority,
                                                                 after.priority))
    if o.command.verb == "group":
        return words["group"].format(after.group)
    urgent = words["urgent"] if after.urgent and not before.urgent else ""
    return words["status"].format(status_text(wf, after)) + urgent


def _refused(o: Outcome, state: TicketState, wf: Workflow, language: str) -> str:
    words, cmd = TEXT[language], o.command
    if cmd.error and cmd.verb not in REGISTRY:
        return f"{words['unknown']} /{cmd.verb}. " + _what_works(state, wf, language)
    if cmd.error:
        return cmd.error
    if o.withheld:
        return words["other"]
    verb = REGISTRY[cmd.verb]
    if not verb.customers_may:
        return words["staff"]
    label = status_text(wf, state)
    if cmd.verb == "close":
        where = words["or"].join(words["q"].format(wf.status_label(s))
                                 for s in wf.customer_close_from)
        return (words["close"].format(words["q"].format(label), where) if where
                else words["close_never"].format(label))
    if cmd.verb == "reopen":
        return words["reopen"].format(label)
    if cmd.verb == "approve":
        return words["approve"].format(label)
    if verb.permitted(state, wf):
        return words["may_not"]
    return o.message


def _what_works(state: TicketState, wf: Workflow, language: str) -> str:
    words = TEXT[language]
    now = [WORDS[language][v] for v in customer_commands(wf, state.status, state.substatus)
           if v in WORDS[language]]
    return words["offer"].format(", ".join(now)) if now else words["none_now"]
