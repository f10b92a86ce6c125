"""The three workflows mailgate ships, as the same tables a `[workflows.NAME]` entry holds.

Each follows a reference document its users work by, in the document's language: the
status labels are the document's names, the English names mailgate used first stay
accepted (as aliases; stored tickets keep the internal names), and every status says who
acts (`actors`, roles such as digital_coach, key_account_manager, implementer, customer,
owner, handler) and what is to be done (`todo`, in the document's language).

- `support` (German, a Zammad-style desk): new, open, in progress, waiting for the
  customer, waiting internally, resolved, closed; groups, ticket types and due dates. A
  customer's reply while we wait for them reopens the ticket; a "thanks" after
  resolution does not.
- `website` (German): website production, from backlog to live, with a mail to
  accounting (the `accounting` group) when the site goes live.
- `twolevel` (Danish): a main status plus a sub-status. Customers change neither, except
  that their approval (/approve, /godkend) closes a ticket waiting for it, or records the
  acceptance of a test version; an assigned new ticket is received; a reopened ticket is
  marked urgent; a ticket waiting for the customer's approval closes itself after 8 days.

- `forum` (German): the forum-like request system: new, questions to the customer, in
  progress, fixed (the customer confirms with /close or reopens), closed; the customer
  is told of every change (`notify_customer = "every-change"`).

Reminders (timers with `remind`) mail the customer once when a ticket has waited for them
for some days without activity (support: 4 days; website: 5; two-level: 4 for more
information, 5 for an approval, three days before it closes itself).
"""

from __future__ import annotations


def _s(name: str, label: str, category: str, actors: list[str], todo: str, **more) -> dict:
    return {"name": name, "label": label, "category": category, "actors": actors,
            "todo": todo, **more}


SUPPORT = {
    "label": "Support (Zammad)",
    "language": "de",
    "initial": "new",
    "close": "closed",
    "reopen": "open",
    "customer_close": "closed",
    "customer_close_from": ["resolved", "waiting"],
    "types": ["question", "incident", "problem", "change request", "bug"],
    # the customer may pick the priority and the topic (group, whose owner then takes it)
    "customer_may": ["priority", "group"],
    "statuses": [
        _s("new", "Neu", "open", ["owner"],
           "Themenbereich, Besitzer, Priorität, Ticketart und Due Date festlegen.",
           customer_visible=False, on_customer_reply="", aliases=["New"]),
        _s("open", "Offen", "open", ["handler"],
           "Die Anfrage nach Priorität abarbeiten, sobald Kontingent oder Auftrag da ist.",
           customer_visible=False, work=True, aliases=["Open"]),
        _s("in-progress", "In Bearbeitung", "open", ["handler"],
           "Die Anfrage lösen und das zugesagte Due Date einhalten.", work=True,
           aliases=["In progress"]),
        _s("waiting", "Warten auf Rückmeldung", "waiting", ["customer"],
           "Die Rückfragen des Supports beantworten.", on_customer_reply="open",
           aliases=["Waiting for customer", "waiting-customer", "pending"]),
        _s("waiting-internal", "Warten intern", "waiting", ["handler"],
           "Die Antwort der Kollegen einholen und dann weiterarbeiten.",
           customer_visible=False, aliases=["Waiting internal"]),
        _s("resolved", "Gelöst", "closed", ["customer"],
           "Die Lösung prüfen und bestätigen, oder die Anfrage wieder öffnen.",
           aliases=["Resolved"]),
        _s("closed", "Geschlossen", "closed", [], "Nichts mehr; die Anfrage ist beendet.",
           aliases=["Closed"]),
    ],
    "timers": [
        {"when": "waiting", "days": 4, "remind": "customer"},
        {"when": "waiting-internal", "days": 3, "remind": "agents"},
    ],
}

DC, KAM, IMPL, CUSTOMER = "digital_coach", "key_account_manager", "implementer", "customer"

WEBSITE = {
    "label": "Webseiten-Ticket",
    "language": "de",
    "initial": "backlog",
    "close": "live",
    "reopen": "to-do",
    "customer_close": "going-live",
    "customer_close_from": ["at-customer"],
    "customer_may_reopen": False,
    "statuses": [
        _s("backlog", "Backlog", "open", [DC],
           "Den Verkaufsprozess für die Webseite abschließen.", customer_visible=False,
           next=["to-do"]),
        _s("to-do", "ToDo", "open", [KAM], "Prüfen, ob alle nötigen Daten da sind.",
           customer_visible=False, next=["data-checked", "waiting-for-data"],
           aliases=["To do", "todo"]),
        _s("data-checked", "Daten geprüft", "open", [KAM],
           "Ist alles da, den Auftrag in die Umsetzung geben; fehlt etwas, es beim Digital "
           "Coach oder beim Kunden anfordern (bei Kleinigkeiten parallel zur Umsetzung).",
           customer_visible=False, next=["in-production", "waiting-for-data"],
           aliases=["Data checked"]),
        _s("waiting-for-data", "Warten auf Daten", "waiting", [DC, CUSTOMER],
           "Die fehlenden Unterlagen nachliefern.", on_customer_reply="data-checked",
           next=["data-checked", "in-production"], aliases=["Waiting for data"]),
        _s("in-production", "In Umsetzung", "open", [IMPL],
           "Die Grundstruktur der Webseite aufsetzen.",
           next=["project-url-added", "at-customer", "waiting-for-data"],
           aliases=["In production"]),
        _s("project-url-added", "Projekt-URL hinzugefügt", "open", [IMPL],
           "Inhalte und Gestaltung nach den Vorgaben umsetzen.",
           next=["at-customer", "waiting-for-data", "in-production"],
           aliases=["Project URL added"]),
        _s("at-customer", "Beim Kunden", "waiting", [DC, CUSTOMER],
           "Die fertige Seite prüfen (der Digital Coach vorab, mit Vorschau-Link und "
           "Passwort für den Kunden) und Änderungswünsche oder die Freigabe an die Agentur "
           "schicken.", next=["in-production", "project-url-added", "going-live"],
           aliases=["At the customer for approval", "approval"]),
        _s("going-live", "Website geht live", "open", [KAM],
           "Die Seite online stellen, bei Bedarf den Server einrichten und Folgeprodukte "
           "(etwa Google My Business) anlegen; danach Digital Coach oder Kunde Bescheid "
           "geben.", next=["live"], aliases=["Going live"]),
        # the document's last actors are the Digital Coach (tells the customer) and Zoho,
        # which tells accounting that the invoice can go out: here the `accounting` group
        _s("live", "Website live", "closed", [DC, "accounting"],
           "Den Kunden bei Bedarf informieren; die Buchhaltung stellt die Rechnung.",
           notify=["accounting"], next=["to-do"], aliases=["Live"]),
    ],
    "timers": [
        {"when": "waiting-for-data", "days": 5, "remind": "customer"},
        {"when": "at-customer", "days": 5, "remind": "customer"},
    ],
}

SUPPORTER = "supporter"

TWOLEVEL = {
    "label": "Statusser i kundecenteret (to niveauer)",
    "language": "da",
    "initial": "new",
    "close": "closed",
    "reopen": "reopened",
    "customer_close": "closed",
    "customer_close_from": [],
    "customer_may_reopen": False,
    "urgent_on_reopen": True,
    "on_assign": "received",
    # the customer's approval: closes, or (a test version) records the acceptance only
    "customer_approve": {
        "waiting-for-customer-approval": "closed, approved-by-customer",
        "updated-in-production-waiting-for-approval": "closed, updated-in-production-accepted",
        "updated-in-test-waiting-for-approval": ", updated-in-test-accepted",
    },
    "statuses": [
        _s("new", "Ny (Ubehandlet)", "open", [SUPPORTER],
           "Læse sagen og tildele den til en supporter.", customer_visible=False,
           aliases=["Ny", "Ubehandlet", "New (unhandled)", "New"]),
        _s("received", "Modtaget", "open", [SUPPORTER], "Gå i gang med sagen.",
           aliases=["Received"]),
        _s("in-progress", "Under behandling", "open", [SUPPORTER], "Løse sagen.",
           on_customer_reply="in-progress, waiting for supporter",
           aliases=["In progress"]),
        _s("closed", "Lukket", "closed", [], "Intet; sagen er løst og godkendt.",
           aliases=["Closed"]),
        _s("reopened", "Genåbnet", "open", [SUPPORTER],
           "Tage fat i sagen igen med det samme (den haster).", aliases=["Reopened"]),
    ],
    "substatuses": [
        _s("normal", "Normal", "open", [SUPPORTER], "Supporten løser sagen selv."),
        _s("waiting-for-access", "Afventer adgang til kunde", "open", [CUSTOMER],
           "Give adgang til serveren, så arbejdet kan begynde.",
           aliases=["Waiting for access"]),
        _s("waiting-for-update-start", "Afventer Distribution start", "open",
           [SUPPORTER, CUSTOMER], "Aftale en opdatering, først i TEST og siden i PROD.",
           aliases=["Waiting for update start"]),
        _s("waiting-for-customer-approval", "Afventer godkendelse fra kunde", "open",
           [CUSTOMER], "Godkende løsningen eller svaret og lukke sagen.",
           aliases=["Waiting for customer approval"]),
        _s("waiting-for-consultant", "Afventer konsulent", "open", ["consultant"],
           "Konsulentgruppen overtager sagen.", aliases=["Waiting for consultant"]),
        _s("waiting-for-more-info-from-customer", "Afventer mere info fra kunde", "open",
           [CUSTOMER], "Sende de oplysninger, supporten mangler.",
           aliases=["Waiting for more info from customer"]),
        _s("waiting-for-supporter", "Afventer supporter", "open", [SUPPORTER],
           "Tage sagen op og gå i gang.", aliases=["Waiting for supporter"]),
        _s("waiting-for-operations", "Afventer TmS Drift", "open", ["operations"],
           "De tekniske konsulenter overtager sagen.", aliases=["Waiting for operations"]),
        _s("waiting-for-development", "Afventer udviklingen", "open", ["development"],
           "Udviklingen hjælper supporteren; supporteren venter på svar.",
           aliases=["Waiting for development"]),
        _s("approved-by-customer", "Godkendt af kunde", "open", [SUPPORTER],
           "Lukke sagen.", aliases=["Approved by customer"]),
        _s("not-approved-by-customer", "Ikke godkendt af kunde", "open", ["development"],
           "Sende sagen tilbage til TEST og udviklingen.",
           aliases=["Not approved by customer"]),
        _s("updated-in-production-accepted", "Opdateret i PROD, Accepteret af kunde", "open",
           [SUPPORTER], "Lukke sagen."),
        _s("updated-in-production-not-accepted", "Opdateret i PROD, Ikke accepteret af kunde",
           "open", ["development"], "Sende sagen tilbage til TEST og udviklingen."),
        _s("updated-in-production-waiting-for-approval",
           "Opdateret i PROD. Afventer kunde accept", "open", [CUSTOMER],
           "Kontrollere rettelsen i PROD og lukke sagen (ellers lukkes den efter 8 dage).",
           aliases=["Updated in production, waiting for approval"]),
        _s("updated-in-test-accepted", "Opdateret i TEST, Accepteret af kunde", "open",
           [SUPPORTER], "Lægge løsningen i PROD; sagen lukkes ikke endnu."),
        _s("updated-in-test-not-accepted", "Opdateret i TEST, Ikke accepteret af kunde",
           "open", ["development"],
           "Holde løsningen ude af PROD og sende sagen tilbage til udviklingen."),
        _s("updated-in-test-waiting-for-approval", "Opdateret i TEST. Afventer kunde accept",
           "open", [CUSTOMER],
           "Afprøve rettelsen i TEST og skrive på sagen, om den er i orden.",
           aliases=["Updated in test, waiting for approval"]),
        _s("sent-to-te-sweden", "Sendt til TE Sverige", "open", ["development"],
           "Udviklerne i Sverige hjælper konsulenterne med TimeEdit-sagen."),
        _s("standby", "Standby", "open", [], "Intet for nu, som aftalt med kunden."),
        _s("change-request", "Ændringsønske fra kunde", "open", ["development"],
           "Vurdere ønsket og eventuelt sende et tilbud.", aliases=["Change request"]),
        _s("change-request-quote-accepted", "Ændringsønske Tilbud Accepteret", "open",
           ["development"], "Udvikle ændringen, som kunden har bestilt.",
           aliases=["Change request quote accepted"]),
        _s("change-request-quote-sent", "Ændringsønske Tilbud sent", "open", [CUSTOMER],
           "Tage stilling til tilbuddet.", aliases=["Change request quote sent"]),
    ],
    "timers": [
        {"when": "waiting for customer approval", "days": 5, "remind": "customer"},
        {"when": "waiting for more info from customer", "days": 4, "remind": "customer"},
        {"when": "waiting for customer approval", "days": 8, "to": "closed"},
        {"when": "updated in production, waiting for approval", "days": 8, "to": "closed"},
    ],
}

# The forum-like request system (German): one thread per request, questions and answers
# until it is done, "behoben" until the customer confirms or reopens it; the customer is
# told of every change by mail (notify_customer), so nobody has to log in to look.
FORUM = {
    "label": "Anfragen (Forum)",
    "language": "de",
    "initial": "new",
    "close": "closed",
    "reopen": "in-progress",
    "customer_close": "closed",
    "customer_close_from": ["fixed"],
    "notify_customer": "every-change",
    "types": ["Änderungswunsch", "Frage", "Fehler"],
    "statuses": [
        _s("new", "Neu", "open", ["handler"],
           "Die Anfrage lesen: umsetzen oder Rückfragen als Kommentar stellen.",
           aliases=["New"]),
        _s("questions", "Rückfrage", "waiting", [CUSTOMER],
           "Die Rückfragen zur Anfrage beantworten.", on_customer_reply="in-progress",
           aliases=["Question", "Waiting for customer"]),
        _s("in-progress", "In Umsetzung", "open", ["handler"],
           "Den Wunsch umsetzen und die neue Version schicken.", aliases=["In progress"]),
        _s("fixed", "Behoben", "waiting", [CUSTOMER],
           "Die Änderungen prüfen und bestätigen, dass alles korrekt umgesetzt ist, oder "
           "die Anfrage erneut öffnen.", aliases=["Fixed", "Resolved"]),
        _s("closed", "Abgeschlossen", "closed", [], "Nichts mehr; die Anfrage ist beendet.",
           aliases=["Closed"]),
    ],
    "timers": [{"when": "questions", "days": 5, "remind": "customer"}],
}

PRESETS = {"support": SUPPORT, "website": WEBSITE, "twolevel": TWOLEVEL, "forum": FORUM}
