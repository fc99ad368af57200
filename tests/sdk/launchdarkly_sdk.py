"""What a service using the LaunchDarkly Python server SDK gets for one flag, per context.

Usage: launchdarkly_sdk.py BASE_URI SDK_KEY FLAG COUNT DEFAULT_JSON

The SDK runs in polling mode with BASE_URI as its base URI: it downloads `/sdk/latest-all` with
the SDK key and evaluates the flag itself (targets, rules, the fallthrough rollout with its
bucketing) for COUNT user contexts `user-0` ... `user-{COUNT-1}`. No events are sent.
Prints {"values": [value, ...]} in context order.
"""

import json
import sys

import ldclient
from ldclient import Context
from ldclient.config import Config


def main():
    base, key, name, count, default = sys.argv[1:6]
    config = Config(
        sdk_key=key,
        base_uri=base,
        stream=False,
        send_events=False,
        diagnostic_opt_out=True,
    )
    ldclient.set_config(config)
    client = ldclient.get()
    if not client.is_initialized():
        print("the LaunchDarkly SDK did not initialise", file=sys.stderr)
        sys.exit(1)
    fallback = json.loads(default)
    values = [
        client.variation(name, Context.builder(f"user-{index}").build(), fallback)
        for index in range(int(count))
    ]
    client.close()
    json.dump({"values": values}, sys.stdout)


if __name__ == "__main__":
    main()
