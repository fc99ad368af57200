"""What the Unleash Python SDK (UnleashClient) serves each of N users for some flags.

Usage: unleash_rollout.py API_URL TOKEN CACHE_DIR N FLAG [FLAG ...]

Starts a client (one poll of the client API at start, as a service starting up does; no
metrics, no registration), then for userIds `user-0` ... `user-{N-1}` asks `is_enabled` and
`get_variant` for each flag. Prints one JSON object:
{"FLAG": {"enabled": [bool, ...], "variant": [name_or_"disabled", ...]}, ...}.
"""

import json
import sys

from UnleashClient import UnleashClient


def main():
    url, token, cache_dir, count, flags = (
        sys.argv[1],
        sys.argv[2],
        sys.argv[3],
        int(sys.argv[4]),
        sys.argv[5:],
    )
    client = UnleashClient(
        url=url,
        app_name="killswitch-rollout-tests",
        custom_headers={"Authorization": token},
        refresh_interval=3600,
        disable_metrics=True,
        disable_registration=True,
        cache_directory=cache_dir,
    )
    client.initialize_client()
    out = {}
    for flag in flags:
        enabled, variants = [], []
        for i in range(count):
            context = {"userId": f"user-{i}"}
            enabled.append(client.is_enabled(flag, context))
            variants.append(client.get_variant(flag, context)["name"])
        out[flag] = {"enabled": enabled, "variant": variants}
    client.destroy()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
