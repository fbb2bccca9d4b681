#!/usr/bin/env python3
"""Extracts the output shapes of AWS service operations from botocore's service models into
the compact JSON files under crates/asl/src/mock_shapes/, which TestState uses to validate a
mocked `result` against the API it stands in for.

Usage:
    pip download botocore==1.41.0 --no-deps -d /tmp/botocore
    python3 crates/asl/tools/mock_shapes.py /tmp/botocore/botocore-1.41.0-py3-none-any.whl

The argument is a botocore wheel or a botocore `data` directory; without one, the `data` folder
of the importable botocore package is used. The committed data comes from botocore 1.41.0
(November 2025): Step Functions validates mocks against models of that time, and later models
already differ where AWS's recorded answers depend on them (Lambda's MemorySize maximum of
10240 became 32768). The source is recorded in each file so the data can be regenerated.

Per service, a file `<sfn service name>.json`:
    {"source": "botocore <version> <model>/<api version>",
     "operations": {"<Operation>": "<output shape>", ...},   operations with an output
     "shapes": {"<name>": <shape>, ...}}                       only shapes reachable from outputs
A shape is an object with "type" (structure, list, map, string, blob, boolean, timestamp,
integer, long, float, double, document) and, where the model sets them: "min"/"max" (value for
numbers, length for strings and blobs, entries for lists and maps), "enum", "member" (list),
"key" and "value" (map), "members" ({name: shape}) and "required" ([names], in model order) for
structures. Member names are written as Step Functions spells them in task results: the
model's name with its first letter upper-cased (`executionArn` becomes `ExecutionArn`).
Documentation, locations and serialisation details are left out.
"""

import gzip
import json
import os
import sys
import zipfile

# Step Functions' aws-sdk service name -> botocore model directory. Step Functions spells
# services as the AWS SDK for Java 2.x does (`sfn`, `eventbridge`, `bedrockruntime`).
SERVICES = {
    "athena": "athena",
    "batch": "batch",
    "bedrockruntime": "bedrock-runtime",
    "dynamodb": "dynamodb",
    "ecs": "ecs",
    "eventbridge": "events",
    "glue": "glue",
    "kms": "kms",
    "lambda": "lambda",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "sfn": "stepfunctions",
    "sns": "sns",
    "sqs": "sqs",
    "ssm": "ssm",
}

KEPT = ("min", "max", "enum")


def sfn_cased(name):
    return name[:1].upper() + name[1:]


class Wheel:
    """Reads a botocore wheel's `botocore/data/` without unpacking it."""

    def __init__(self, path):
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    def versions(self, model):
        prefix = f"botocore/data/{model}/"
        return {n[len(prefix):].split("/")[0] for n in self.names if n.startswith(prefix) and n.count("/") > 3}

    def read(self, model, version, file):
        name = f"botocore/data/{model}/{version}/{file}"
        return self.zip.read(name) if name in self.names else None


class DataDir:
    def __init__(self, path):
        self.path = path

    def versions(self, model):
        base = os.path.join(self.path, model)
        return {v for v in os.listdir(base) if os.path.isdir(os.path.join(base, v))}

    def read(self, model, version, file):
        path = os.path.join(self.path, model, version, file)
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return f.read()


def load_model(source, model):
    version = sorted(source.versions(model))[-1]
    for file in ("service-2.json", "service-2.json.gz"):
        raw = source.read(model, version, file)
        if raw is not None:
            if file.endswith(".gz"):
                raw = gzip.decompress(raw)
            return version, json.loads(raw)
    raise SystemExit(f"no service-2.json for {model} {version}")


def compact(name, shapes, out):
    """Copies shape `name` and every shape it reaches into `out`."""
    if name in out:
        return
    src = shapes[name]
    ty = src["type"]
    shape = {"type": ty}
    if ty == "structure" and src.get("document"):
        shape = {"type": "document"}
    for key in KEPT:
        if key in src:
            value = src[key]
            # Some models write bounds as floats (`1.0`); integers keep the data small.
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            shape[key] = value
    out[name] = shape
    if shape["type"] == "structure":
        shape["members"] = {sfn_cased(m): ref["shape"] for m, ref in src.get("members", {}).items()}
        required = [sfn_cased(m) for m in src.get("required", [])]
        if required:
            shape["required"] = required
        for ref in src.get("members", {}).values():
            compact(ref["shape"], shapes, out)
    elif ty == "list":
        shape["member"] = src["member"]["shape"]
        compact(src["member"]["shape"], shapes, out)
    elif ty == "map":
        shape["key"] = src["key"]["shape"]
        shape["value"] = src["value"]["shape"]
        compact(src["key"]["shape"], shapes, out)
        compact(src["value"]["shape"], shapes, out)


def main():
    if len(sys.argv) > 1 and sys.argv[1].endswith(".whl"):
        source = Wheel(sys.argv[1])
        botocore_version = os.path.basename(sys.argv[1]).split("-")[1]
    elif len(sys.argv) > 1:
        source = DataDir(sys.argv[1])
        botocore_version = "data " + sys.argv[1]
    else:
        import botocore

        source = DataDir(os.path.join(os.path.dirname(botocore.__file__), "data"))
        botocore_version = botocore.__version__
    out_dir = os.path.join(os.path.dirname(__file__), "..", "src", "mock_shapes")
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for sfn_name, model_name in sorted(SERVICES.items()):
        version, model = load_model(source, model_name)
        shapes = model["shapes"]
        operations = {}
        kept = {}
        for op_name, op in sorted(model["operations"].items()):
            output = op.get("output", {}).get("shape")
            if output is None:
                continue
            operations[op_name] = output
            compact(output, shapes, kept)
        doc = {
            "source": f"botocore {botocore_version} {model_name}/{version}",
            "operations": operations,
            "shapes": dict(sorted(kept.items())),
        }
        text = json.dumps(doc, separators=(",", ":"), sort_keys=False) + "\n"
        path = os.path.join(out_dir, sfn_name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        total += len(text)
        print(f"{sfn_name:16} {len(operations):4} operations {len(kept):5} shapes {len(text):8} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
