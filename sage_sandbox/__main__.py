"""``python3 -m sage_sandbox`` -- run the sandbox with a demo user for manual click-through."""
from __future__ import annotations

import argparse
import signal
import threading

from .server import SageSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m sage_sandbox",
                                     description="Local Sage Accounting API v3.1 sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--client-id", default="demo")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--redirect-uri", action="append", dest="redirect_uris",
                        help="registered callback URL (repeatable); default "
                             "http://localhost:8069/sage_one/oauth/callback")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--access-token-ttl", type=int, default=300)
    parser.add_argument("--auto-approve", action="store_true",
                        help="the authorize URL redirects at once with a code (headless demos)")
    args = parser.parse_args(argv)
    redirect_uris = args.redirect_uris or ["http://localhost:8069/sage_one/oauth/callback"]

    sb = SageSandbox(host=args.host, port=args.port, latency=args.latency, seed=args.seed,
                     access_token_ttl=args.access_token_ttl, auto_approve=args.auto_approve)
    demo = sb.seed_demo(args.client_id, args.client_secret, redirect_uris)
    sb.start()
    user = sb.state.users[demo["user_id"]]
    print(f"Sage sandbox listening on {sb.url}")
    print(f"  API base       {sb.api_url}")
    print(f"  authorize URL  {sb.authorize_url}")
    print(f"  token URL      {sb.token_url}")
    print(f"  revoke URL     {sb.revoke_url}")
    print(f"  admin          {sb.url}/_sandbox/stats (see sage_sandbox/README.md)")
    print(f"  client_id      {args.client_id}   (client secret as given on the command line)")
    print(f"  redirect URIs  {', '.join(redirect_uris)}")
    print(f"  auto-approve   {'on' if args.auto_approve else 'off'}")
    print(f"Demo user {user['displayed_as']} <{user['email']}> id {user['id']}")
    for bid in demo["business_ids"]:
        biz = sb.state.businesses[bid]
        sub = biz["subscriptions"][0]
        print(f"  business {biz['name']!r} {biz['country']['id']} {sub['displayed_as']}"
              f" active={sub['active']} id {bid}")
    print("Ctrl-C to stop.", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    sb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
