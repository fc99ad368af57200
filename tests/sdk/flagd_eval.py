"""What a service using the OpenFeature flagd provider (FILE mode) gets for flags of a file.

Usage: flagd_eval.py FILE N FLAG [FLAG ...]

Evaluates each flag as a boolean with the code default `true` (a kill switch's "feature
enabled") for N targeting keys, each with a context that varies the attributes the sample
segments use (email domain, customer tier, tenant id and region). Prints one JSON object:
{"FLAG": [[value, reason, variant_or_null, error_code_or_null], ...], ...}, in key order.
"""

import json
import sys
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

DOMAINS = ["bookstore.example", "example.com", "mail.example"]
TIERS = ["beta", "standard", "gold"]
TENANTS = ["acme-books", "globex-reads", "initech-library", "tiny-shop", "big-mart"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"]


def context(i):
    return EvaluationContext(
        targeting_key=f"user-{i}",
        attributes={
            "email": f"user{i}@{DOMAINS[i % len(DOMAINS)]}",
            "customer_tier": TIERS[(i // 3) % len(TIERS)],
            "tenant_id": TENANTS[(i // 7) % len(TENANTS)],
            "tenant_region": REGIONS[(i // 5) % len(REGIONS)],
        },
    )


def main():
    path, count, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path)
    api.set_provider_and_wait(provider)
    client = api.get_client()
    # The file watcher loads the file on its own thread: wait until the provider is ready.
    deadline = time.monotonic() + 10
    while client.get_provider_status() != ProviderStatus.READY:
        if time.monotonic() > deadline:
            sys.exit(f"flagd provider not ready after 10 s: {client.get_provider_status()}")
        time.sleep(0.01)
    contexts = [context(i) for i in range(count)]
    out = {}
    for flag in flags:
        rows = []
        for ctx in contexts:
            details = client.get_boolean_details(flag, True, ctx)
            error = details.error_code.value if details.error_code else None
            reason = details.reason.value if hasattr(details.reason, "value") else details.reason
            rows.append([details.value, reason, details.variant, error])
        out[flag] = rows
    api.shutdown()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
