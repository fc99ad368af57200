"""What a service using flagsmith-python in local evaluation mode gets for one flag, per identity.

Usage: flagsmith_rollout.py API_URL SERVER_KEY FLAG COUNT

The SDK downloads `/api/v1/environment-document/` with the server-side key and evaluates the
flag itself (segments, PERCENTAGE_SPLIT rules, multivariate allocations) for COUNT identities
`user-0` ... `user-{COUNT-1}` without traits.
Prints {"identities": [[enabled, value], ...]} in identity order.
"""

import json
import sys

from flagsmith import Flagsmith


def main():
    url, key, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Flagsmith(
        environment_key=key,
        api_url=url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
        request_timeout_seconds=5,
    )
    rows = []
    for index in range(count):
        flags = client.get_identity_flags(f"user-{index}")
        rows.append([flags.is_feature_enabled(name), flags.get_feature_value(name)])
    json.dump({"identities": rows}, sys.stdout)


if __name__ == "__main__":
    main()
