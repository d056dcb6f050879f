"""`GET api/workflows` says which workflows no connected worker hosts, and since when.

A real server and a real headless worker: while the worker is connected its workflows are
`hosted`; once it stops they stay listed (registered) but `hosted` is false and `host_left_at`
is when it left. Studio and the Lab panel show exactly this.
"""

from __future__ import annotations

import time

from harness import Server, Worker, wait_until


def workflows(server: Server) -> dict[str, dict]:
    return {f"{w['module']}/{w['name']}": w for w in server.get("api/workflows")["workflows"]}


def test_a_workflow_whose_last_host_left_is_listed_as_unhosted_with_the_time(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        worker = Worker(server, ["viewapp"], concurrency=1, log=tmp_path / "worker.log").start()
        worker.wait_registered()
        listed = workflows(server)["viewapp/showcase"]
        assert listed["hosted"] is True and listed["host_left_at"] is None
        before = time.time()
        worker.stop()
        wait_until(lambda: not workflows(server)["viewapp/showcase"]["hosted"], 30, interval=0.1,
                   message="the workflow to be listed as hosted by no worker")
        left = workflows(server)["viewapp/showcase"]["host_left_at"]
        assert left is not None and before - 1 <= left <= time.time()
    finally:
        server.stop()
