"""Which variant the OpenFeature flagd provider (FILE mode) serves each targeting key.

Usage: flagd_variants.py FILE N TYPE FLAG [FLAG ...]

TYPE is `boolean` or `string`: how the flags are asked for (a boolean with the code default
`true`, a string with the code default `"code-default"`). Targeting keys and contexts are those
of flagd_eval.py (`user-0` ... `user-{N-1}`, the segments' attributes varied the same way).
Prints one JSON object: {"FLAG": [[value, variant_or_null, reason, error_code_or_null], ...]}.
"""

import json
import sys
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.provider import ProviderStatus

from flagd_eval import context


def main():
    path, count, kind, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path)
    api.set_provider_and_wait(provider)
    client = api.get_client()
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
            if kind == "string":
                details = client.get_string_details(flag, "code-default", ctx)
            else:
                details = client.get_boolean_details(flag, True, ctx)
            error = details.error_code.value if details.error_code else None
            reason = details.reason.value if hasattr(details.reason, "value") else details.reason
            rows.append([details.value, details.variant, reason, error])
        out[flag] = rows
    api.shutdown()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
