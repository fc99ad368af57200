"""What a service using flagsmith-python gets from a Flagsmith API.

Usage: flagsmith_sdk.py API_URL ENVIRONMENT_KEY MODE FLAG [FLAG ...]

MODE `remote`: remote evaluation (the SDK reads `/api/v1/flags/`). MODE `local`: local
evaluation (the SDK reads `/api/v1/environment-document/` with a server-side key and evaluates
segments itself); each flag is also evaluated for a few identities with traits and for 200
plain identities `id-0` ... `id-199` (percentage segments split those).
Prints {"environment": {FLAG: {"enabled": bool, "value": ...}}, "identities": {ID: {FLAG: ...}}}.
"""

import json
import sys

from flagsmith import Flagsmith

IDENTITIES = {
    "user-1": {"email": "alice@bookstore.example", "plan": "enterprise"},
    "user-2": {"email": "bob@example.com", "plan": "free"},
    "user-3": {},
}
IDENTITIES.update({f"id-{i}": {} for i in range(200)})


def state(flags, name):
    return {"enabled": flags.is_feature_enabled(name), "value": flags.get_feature_value(name)}


def main():
    url, key, mode, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    client = Flagsmith(
        environment_key=key,
        api_url=url,
        enable_local_evaluation=(mode == "local"),
        environment_refresh_interval_seconds=3600,
        request_timeout_seconds=5,
    )
    out = {"environment": {}, "identities": {}}
    flags = client.get_environment_flags()
    for name in names:
        out["environment"][name] = state(flags, name)
    if mode == "local":
        for identity, traits in IDENTITIES.items():
            flags = client.get_identity_flags(identity, traits=traits)
            out["identities"][identity] = {name: state(flags, name) for name in names}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
