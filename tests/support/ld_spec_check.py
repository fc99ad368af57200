"""Checks HTTP requests against LaunchDarkly's REST API spec, as LaunchDarkly's generated
Python client (PyPI `launchdarkly-api`, installed by tests/servers/install-launchdarkly-api.sh)
carries it: every operation's method, path template, query parameters with their types, and
request body schema.

Input (stdin): one JSON object per line, `{"method", "path", "query", "content_type", "body"}`
(`query` undecoded, as sent). Output (stdout): one JSON object per request, `{"request",
"operation", "problems"}`. Exit 1 when any request has a problem.

How a request is checked:
- its method and path must match exactly one operation's method and path template;
- every query parameter must be one of that operation's parameters, its value valid for the
  parameter's type (a boolean is `true` or `false`, an integer is digits);
- the operation is then called through the generated client with those values (pydantic
  validates every argument against the spec's types) and the URL the client would send must be
  the one sent, query parameters included;
- a JSON body must validate against the operation's body model, with no field the schema does
  not have. A semantic patch (`Content-Type: ...; domain-model=launchdarkly.semanticpatch`) is
  checked against the shape the operation's description gives it (`comment`,
  `environmentKey`, `instructions` of objects with a `kind` that the description documents),
  because the spec's body schema describes only JSON patch.
- `/sdk/...` requests go to the server-side SDK endpoints, which the REST spec does not cover:
  they are reported as such, without problems.
"""

import inspect
import json
import re
import sys
import typing
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import launchdarkly_api
from launchdarkly_api import api as api_package
from launchdarkly_api.api_client import ApiClient
from launchdarkly_api.configuration import Configuration

SEMANTIC_PATCH = "domain-model=launchdarkly.semanticpatch"


class Captured(Exception):
    def __init__(self, method, url, body):
        super().__init__(url)
        self.method = method
        self.url = url
        self.body = body


class CapturingClient(ApiClient):
    """Builds requests like the generated client and hands them back instead of sending."""

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        raise Captured(method, url, body)


def operations():
    """Every operation of the generated client: method, path template, parameters."""
    found = []
    package_dir = Path(api_package.__file__).parent
    for source_file in sorted(package_dir.glob("*_api.py")):
        source = source_file.read_text()
        module_name = f"launchdarkly_api.api.{source_file.stem}"
        module = __import__(module_name, fromlist=["*"])
        class_names = re.findall(r"^class (\w+Api)\b", source, re.MULTILINE)
        if not class_names:
            continue
        cls = getattr(module, class_names[0])
        for match in re.finditer(r"def _(\w+)_serialize\(", source):
            name = match.group(1)
            end = source.find("return self.api_client.param_serialize(", match.end())
            tail = source[end:end + 400]
            block = source[match.end():end]
            method = re.search(r"method='(\w+)'", tail)
            path = re.search(r"resource_path='([^']+)'", tail)
            if not (method and path):
                continue
            query = dict(re.findall(r"_query_params\.append\(\('(\w+)', (\w+)\)\)", block))
            path_params = dict(re.findall(r"_path_params\['(\w+)'\] = (\w+)", block))
            body = re.search(r"_body_params = (\w+)", block)
            pattern = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(path.group(1))) + "$"
            found.append({
                "name": name,
                "cls": cls,
                "method": method.group(1),
                "template": path.group(1),
                "regex": re.compile(pattern),
                "path_params": path_params,
                "query": query,
                "body": body.group(1) if body else None,
            })
    return found


def base_type(annotation):
    """The innermost type of `Annotated[Optional[StrictBool], ...]` and the like."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


def convert(value, annotation):
    """A query string value as the parameter's type, or a problem."""
    kind = base_type(annotation)
    text = repr(kind)
    if kind is bool or "StrictBool" in text or "bool" == getattr(kind, "__name__", ""):
        if value in ("true", "false"):
            return value == "true", None
        return None, f"`{value}` is not a boolean (`true` or `false`)"
    if kind is int or "StrictInt" in text:
        if re.fullmatch(r"-?\d+", value):
            return int(value), None
        return None, f"`{value}` is not an integer"
    return value, None


def model_problems(model, data, where):
    """Problems of `data` against a generated pydantic model: validation and unknown fields."""
    if not isinstance(data, dict):
        return [f"{where}: expected an object, got {type(data).__name__}"]
    problems = []
    known = set()
    for name, field in model.model_fields.items():
        known.add(field.alias or name)
    for key in data:
        if key not in known:
            problems.append(f"{where}: field `{key}` is not in the schema {model.__name__}")
    try:
        model.from_dict(data)
    except Exception as err:  # pydantic's ValidationError, or a type error in from_dict
        problems.append(f"{where}: does not validate against {model.__name__}: {err}")
    return problems


def semantic_patch_problems(operation, data):
    doc = inspect.getdoc(getattr(operation["cls"], operation["name"])) or ""
    documented = set(re.findall(r"#### (\w+)", doc))
    if not isinstance(data, dict):
        return ["semantic patch: expected an object"]
    problems = []
    for key, value in data.items():
        if key not in ("comment", "environmentKey", "instructions"):
            problems.append(f"semantic patch: field `{key}` is not documented")
        elif key != "instructions" and not isinstance(value, str):
            problems.append(f"semantic patch: `{key}` must be a string")
    instructions = data.get("instructions")
    if not isinstance(instructions, list) or not instructions:
        problems.append("semantic patch: `instructions` (required) must be a non-empty array")
        return problems
    for instruction in instructions:
        kind = instruction.get("kind") if isinstance(instruction, dict) else None
        if not isinstance(kind, str):
            problems.append("semantic patch: an instruction without a string `kind`")
        elif documented and kind not in documented:
            problems.append(f"semantic patch: instruction kind `{kind}` is not documented "
                            f"for {operation['name']}")
    return problems


def check(request, table, client):
    method = request["method"].upper()
    path = request["path"]
    result = {"request": f"{method} {path}?{request.get('query', '')}", "operation": None,
              "problems": []}
    problems = result["problems"]
    if path.startswith("/sdk/"):
        result["operation"] = "server-side SDK endpoint (not in the REST API spec)"
        return result
    candidates = [op for op in table if op["method"] == method and op["regex"].match(path)]
    if not candidates:
        problems.append("no operation of the spec has this method and path")
        return result
    # The most literal template wins (`/flags/{p}/{f}` over `/flags/{p}/{f}` with more
    # placeholders elsewhere).
    candidates.sort(key=lambda op: op["template"].count("{"))
    operation = candidates[0]
    result["operation"] = operation["name"]
    function = getattr(operation["cls"], operation["name"])
    signature = inspect.signature(function)
    kwargs = {}
    names = re.findall(r"\{(\w+)\}", operation["template"])
    for spec_name, value in zip(names, operation["regex"].match(path).groups()):
        kwargs[operation["path_params"].get(spec_name, spec_name)] = unquote(value)
    sent_query = parse_qsl(request.get("query", ""), keep_blank_values=True)
    for spec_name, value in sent_query:
        python_name = operation["query"].get(spec_name)
        if python_name is None:
            problems.append(f"query parameter `{spec_name}` is not a parameter of "
                            f"{operation['name']} (it has {sorted(operation['query'])})")
            continue
        converted, problem = convert(value, signature.parameters[python_name].annotation)
        if problem:
            problems.append(f"query parameter `{spec_name}`: {problem}")
            continue
        kwargs[python_name] = converted
    body_text = request.get("body") or ""
    if operation["body"]:
        annotation = signature.parameters[operation["body"]].annotation
        model = base_type(annotation)
        try:
            data = json.loads(body_text) if body_text else None
        except ValueError as err:
            problems.append(f"body is not JSON: {err}")
            data = None
        if data is None:
            problems.append(f"{operation['name']} requires a body ({model.__name__})")
        elif SEMANTIC_PATCH in (request.get("content_type") or ""):
            problems.extend(semantic_patch_problems(operation, data))
            # The body model stands for JSON patch: an empty one carries the call through.
            kwargs[operation["body"]] = model.model_construct(**{
                name: [] for name, field in model.model_fields.items()
                if field.is_required() and typing.get_origin(base_type(field.annotation)) is list
            })
        else:
            problems.extend(model_problems(model, data, "body"))
            if not problems:
                kwargs[operation["body"]] = model.from_dict(data)
    elif body_text:
        problems.append(f"{operation['name']} takes no body")
    if problems:
        return result
    api = operation["cls"](client)
    try:
        getattr(api, operation["name"])(**kwargs)
        problems.append("the generated client sent nothing")
    except Captured as captured:
        built = urlsplit(captured.url)
        if unquote(built.path) != unquote(path):
            problems.append(f"the spec's client builds the path {built.path}")
        want = sorted(parse_qsl(built.query, keep_blank_values=True))
        got = sorted(sent_query)
        if want != got:
            problems.append(f"the spec's client builds the query {want}, not {got}")
    except Exception as err:
        problems.append(f"the arguments do not validate against {operation['name']}: {err}")
    return result


def main():
    table = operations()
    client = CapturingClient(Configuration(host="https://app.launchdarkly.com"))
    failed = False
    for line in sys.stdin:
        if not line.strip():
            continue
        result = check(json.loads(line), table, client)
        failed = failed or bool(result["problems"])
        print(json.dumps(result))
    print(json.dumps({"operations_known": len(table),
                      "client_version": launchdarkly_api.__version__}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
