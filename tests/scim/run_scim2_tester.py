"""Runs scim2-tester (PyPI) against a live Keycard SCIM endpoint; exits non-zero on any
check that is not a success or a skip.

Usage: run_scim2_tester.py <base url> <bearer token>
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(http)
    results = check_server(scim)
    # ERROR / CRITICAL are violations of the RFCs' MUSTs; everything else passes.
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    for r in results:
        detail = "" if r.status == Status.SUCCESS else f" -- {r.reason or ''}"
        print(f"{r.status.name.lower():10} {r.title}{detail}")
    print(f"scim2-tester: {len(results)} checks, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
