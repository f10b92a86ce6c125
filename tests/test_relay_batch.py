"""A batch of due mails goes to the relay over one connection, each mail with its own result."""

from __future__ import annotations

from sqlmodel import select

from mailgate.bootstrap import build_app
from mailgate.config import config_from_dict
from mailgate.edges.relay import OutboxSender
from store.models import Outbox
from tests.support.harness import SUPPORT, base_config
from tests.support.tcpproxy import TcpProxy


def _queue(app, n: int) -> list[int]:
    with app.db.unit() as s:
        rows = [Outbox(kind="reply", mail_from=SUPPORT, rcpt=f"c{i}@client.example",
                       message_id=f"m{i}@example.com", subject=f"mail {i}",
                       raw=f"Subject: mail {i}\r\n\r\nHi {i}.\r\n".encode()) for i in range(n)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_a_batch_shares_one_connection_and_keeps_each_mails_result(db_url, relay):
    """The relay refuses one mail for good and another for now; the connection carries on
    (RSET) and the rest are sent; a connection lost mid-batch is opened again."""
    proxy = TcpProxy("127.0.0.1", relay.port)
    config = base_config(db_url, proxy.port, outbound={"retry_min_seconds": 60.0,
                                                       "retry_max_seconds": 60.0})
    app = build_app(config_from_dict(config, source="test"), configure_logs=False)
    try:
        ids = _queue(app, 6)
        relay.fail("RCPT", "550 5.1.1 no such user", times=1)   # the first mail
        relay.fail("DATA", "451 4.3.0 try later", times=1)      # the second
        results = OutboxSender(app).run_due()
        assert [r.state for r in results] == ["failed", "pending", "sent", "sent", "sent",
                                              "sent"]
        assert len(proxy.conns) == 2             # one client connection (and its upstream)
        assert sorted(m.rcpt_tos[0] for m in relay.messages) == [
            f"c{i}@client.example" for i in range(2, 6)]
        with app.db.unit(write=False) as s:
            rows = {r.id: r for r in s.exec(select(Outbox).where(Outbox.id.in_(ids)))}
        first, second = rows[ids[0]], rows[ids[1]]
        assert (first.state, first.attempts) == ("failed", 1)
        assert "550 5.1.1 no such user" in first.last_error
        assert (second.state, second.attempts, second.lease_until) == ("pending", 1, None)
        assert second.next_attempt_at > second.created_at and "451" in second.last_error
        assert all(rows[i].state == "sent" and rows[i].sent_at and
                   rows[i].relay_reply.startswith("250") for i in ids[2:])

        more = _queue(app, 3)
        relay.fail("DATA", "DISCONNECT", times=1)                # lost after the dot
        results = OutboxSender(app).run_due()
        assert [(r.outbox_id, r.state) for r in results] == [
            (more[0], "pending"), (more[1], "sent"), (more[2], "sent")]
        assert len(proxy.conns) == 6             # the lost one, then a new one
    finally:
        proxy.cut()
        app.db.dispose()
