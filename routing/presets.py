"""The three workflows mailgate ships, as the same tables a `[workflows.NAME]` entry holds.

- `support`: a classic support desk (new, open, waiting for the customer, waiting
  internally, resolved, closed), with groups, ticket types and due dates. A customer's
  reply while we wait for them reopens the ticket; a "thanks" after resolution does not.
- `website`: website production, from backlog to live, with who acts at each step and
  a mail to accounting (the `accounting` group) when the site goes live.
- `twolevel`: a main status plus a sub-status. Customers can never change either; a
  reopened ticket is marked urgent; a ticket waiting for the customer's approval closes
  by itself after 8 days.

Reminders (timers with `remind`) mail the customer once when a ticket has waited for them
for some days without activity (support: 4 days; website: 5; two-level: 4 for more
information, 5 for an approval, three days before it closes itself).
"""

from __future__ import annotations

SUPPORT = {
    "label": "Support",
    "initial": "new",
    "close": "closed",
    "reopen": "open",
    "customer_close": "closed",
    "customer_close_from": ["resolved", "waiting"],
    "types": ["question", "incident", "problem", "change request", "bug"],
    "statuses": [
        {"name": "new", "label": "New", "category": "open", "customer_visible": False,
         "on_customer_reply": ""},
        {"name": "open", "label": "Open", "category": "open", "customer_visible": False},
        {"name": "waiting", "label": "Waiting for customer", "category": "waiting",
         "actor": "customer", "on_customer_reply": "open",
         "aliases": ["waiting-customer", "pending"]},
        {"name": "waiting-internal", "label": "Waiting internal", "category": "waiting",
         "customer_visible": False},
        {"name": "resolved", "label": "Resolved", "category": "closed", "actor": "customer"},
        {"name": "closed", "label": "Closed", "category": "closed", "actor": "none"},
    ],
    "timers": [
        {"when": "waiting", "days": 4, "remind": "customer"},
        {"when": "waiting-internal", "days": 3, "remind": "agents"},
    ],
}

WEBSITE = {
    "label": "Website production",
    "initial": "backlog",
    "close": "live",
    "reopen": "to-do",
    "customer_close": "going-live",
    "customer_close_from": ["at-customer"],
    "customer_may_reopen": False,
    "statuses": [
        {"name": "backlog", "label": "Backlog", "category": "open", "actor": "digital coach",
         "customer_visible": False, "next": ["to-do"]},
        {"name": "to-do", "label": "To do", "category": "open", "actor": "key account manager",
         "customer_visible": False, "next": ["data-checked", "waiting-for-data"],
         "aliases": ["todo"]},
        {"name": "data-checked", "label": "Data checked", "category": "open",
         "actor": "key account manager", "customer_visible": False,
         "next": ["in-production", "waiting-for-data"]},
        {"name": "waiting-for-data", "label": "Waiting for data", "category": "waiting",
         "actor": "customer", "on_customer_reply": "data-checked",
         "next": ["data-checked", "in-production"]},
        {"name": "in-production", "label": "In production", "category": "open",
         "actor": "implementer", "next": ["at-customer", "waiting-for-data"]},
        {"name": "at-customer", "label": "At the customer for approval", "category": "waiting",
         "actor": "customer", "next": ["in-production", "going-live"],
         "aliases": ["approval"]},
        {"name": "going-live", "label": "Going live", "category": "open",
         "actor": "key account manager", "next": ["live"]},
        {"name": "live", "label": "Live", "category": "closed", "actor": "accounting",
         "notify": ["accounting"], "next": ["to-do"]},
    ],
    "timers": [
        {"when": "waiting-for-data", "days": 5, "remind": "customer"},
        {"when": "at-customer", "days": 5, "remind": "customer"},
    ],
}

TWOLEVEL = {
    "label": "Two levels (status, sub-status)",
    "initial": "new",
    "close": "closed",
    "reopen": "reopened",
    "customer_close": "closed",
    "customer_close_from": [],
    "customer_may_reopen": False,
    "urgent_on_reopen": True,
    "statuses": [
        {"name": "new", "label": "New (unhandled)", "category": "open",
         "customer_visible": False},
        {"name": "received", "label": "Received", "category": "open"},
        {"name": "in-progress", "label": "In progress", "category": "open",
         "on_customer_reply": "in-progress, waiting for supporter"},
        {"name": "closed", "label": "Closed", "category": "closed"},
        {"name": "reopened", "label": "Reopened", "category": "open"},
    ],
    "substatuses": [
        "Normal", "Waiting for access", "Waiting for update start",
        "Waiting for customer approval", "Waiting for consultant",
        "Waiting for more info from customer", "Waiting for supporter",
        "Waiting for operations", "Waiting for development", "Approved by customer",
        "Not approved by customer", "Updated in test, waiting for approval",
        "Updated in production, waiting for approval", "Standby", "Change request",
        "Change request quote sent", "Change request quote accepted",
    ],
    "timers": [
        {"when": "waiting for customer approval", "days": 5, "remind": "customer"},
        {"when": "waiting for more info from customer", "days": 4, "remind": "customer"},
        {"when": "waiting for customer approval", "days": 8, "to": "closed"},
        {"when": "updated in production, waiting for approval", "days": 8, "to": "closed"},
    ],
}

PRESETS = {"support": SUPPORT, "website": WEBSITE, "twolevel": TWOLEVEL}
