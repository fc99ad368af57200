"""The Unleash Python SDK (UnleashClient), polling a real Unleash the way a service does.

Usage: unleash_sdk.py API_URL TOKEN CACHE_DIR

Starts a client (first poll at start, no metrics or registration) and prints `ready`. Then, for
each line `poll FLAG` on stdin, runs the SDK's own poll once (the job its scheduler runs every
refresh interval: same transport, same `If-None-Match` with the cached ETag) and prints
{"flag": FLAG, "enabled": bool}. The scheduler's own interval is an hour, so the only polls are
the ones asked for. Exits when stdin closes.
"""

import json
import sys

from UnleashClient import UnleashClient


def main():
    url, token, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    client = UnleashClient(
        url=url,
        app_name="killswitch-tests",
        custom_headers={"Authorization": token},
        refresh_interval=3600,
        disable_metrics=True,
        disable_registration=True,
        cache_directory=cache_dir,
    )
    client.initialize_client()
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "poll":
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        # The polling connector's scheduled job, run now: what the next poll would do.
        client.connector._fetch_and_load()
        print(json.dumps({"flag": parts[1], "enabled": client.is_enabled(parts[1])}), flush=True)
    client.destroy()


if __name__ == "__main__":
    main()
