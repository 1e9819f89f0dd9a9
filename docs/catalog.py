#!/usr/bin/env python3
"""Renders the event catalog and the gRPC API reference as static HTML
(`make docs`), offline, from the committed contract:

- events: proto/events/asyncapi.yaml and the schema files it names, one page
  per event type (what it means, its channel and stream, its producer, the
  NATS headers, an example event and the whole schema);
- gRPC: a descriptor image of proto/shequ with its comments (`buf build -o
  image.json`, the second argument): every service, method, message, field
  and enum with its doc comment.

Usage: catalog.py OUT_DIR IMAGE.json
Fails when an event type has no schema file or a page could not be written.
"""
import html
import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
EVENTS = ROOT / "proto/events"
PRODUCERS = {"complaints": "complaints", "alliance": "merchant-alliance", "care": "pensioner-care"}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
pre { background: #f5f5f5; padding: 0.8rem; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; vertical-align: top; }
.muted { color: #666; }
"""


def esc(text):
    return html.escape(str(text or ""))


def page(title, body, depth=0):
    up = "../" * depth
    return (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><p class=\"muted\"><a href=\"{up}index.html\">Events</a> · "
        f"<a href=\"{up}grpc.html\">gRPC API</a></p>{body}</body></html>\n"
    )


def paragraphs(text):
    return "".join(f"<p>{esc(p.strip())}</p>" for p in str(text or "").split("\n\n") if p.strip())


def resolve(root, schema):
    for _ in range(16):
        ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
        if not ref.startswith("#/"):
            return schema
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def example(root, schema, name=""):
    """A value the schema accepts, built from it: consts, first enum values,
    formats' typical values, every property."""
    schema = resolve(root, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return example(root, schema[key][0], name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return {k: example(root, v, k) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(root, schema.get("items", {}), name)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return schema.get("minimum", 1.5)
    if kind == "boolean":
        return False
    formats = {"uuid": "01a23c7d-ae53-71d1-b72f-daef4fc2fee9", "date-time": "2026-12-03T08:30:00Z",
               "date": "2026-12-03", "uri": "https://shequ.example/"}
    return formats.get(schema.get("format"), f"<{name or 'text'}>")


def render_events(out):
    doc = yaml.safe_load((EVENTS / "asyncapi.yaml").read_text(encoding="utf-8"))
    messages = doc["components"]["messages"]
    streams = doc.get("x-shequ-streams", {})
    (out / "events").mkdir(parents=True, exist_ok=True)
    rows = []
    for key, channel in doc["channels"].items():
        address = channel["address"]
        (message_key,) = channel["messages"].keys()
        message = messages[channel["messages"][message_key]["$ref"].split("/")[-1]]
        payload = message["payload"]
        ref = payload.get("schema", payload).get("$ref", "")
        schema_path = EVENTS / ref
        if not ref or not schema_path.exists():
            sys.exit(f"{address}: no schema file ({ref!r})")
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        stream = channel.get("x-shequ-stream", "")
        producer = PRODUCERS.get(address.split(".")[1], "?")
        event = example(schema, schema)
        headers = doc["components"]["schemas"]["natsHeaders"]
        body = (
            f"<h1>{esc(channel.get('title', address))}</h1><p><code>{esc(address)}</code></p>"
            f"{paragraphs(channel.get('description'))}"
            f"<table><tr><th>NATS subject</th><td><code>{esc(address)}</code></td></tr>"
            f"<tr><th>Stream</th><td><code>{esc(stream)}</code> ({esc(streams.get(stream, {}).get('subjects', ''))})</td></tr>"
            f"<tr><th>Producer</th><td>{esc(producer)}</td></tr>"
            f"<tr><th>Schema</th><td><code>{esc(schema.get('$id'))}</code> ({esc(payload.get('schemaFormat', ''))})</td></tr></table>"
            f"<h2>Headers</h2><pre>{esc(json.dumps(headers, indent=2, ensure_ascii=False))}</pre>"
            f"<h2>Example</h2><p class=\"muted\">Built from the schema: each field with a value it accepts.</p>"
            f"<pre>{esc(json.dumps(event, indent=2, ensure_ascii=False))}</pre>"
            f"<h2>Schema</h2><pre>{esc(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        )
        (out / "events" / f"{address}.html").write_text(page(address, body, 1), encoding="utf-8")
        rows.append((stream, address, channel.get("title", ""), producer))
    table = "".join(
        f"<tr><td><code>{esc(s)}</code></td><td><a href=\"events/{esc(a)}.html\"><code>{esc(a)}</code></a></td>"
        f"<td>{esc(t)}</td><td>{esc(p)}</td></tr>"
        for s, a, t, p in sorted(rows)
    )
    stream_rows = "".join(
        f"<tr><td><code>{esc(name)}</code></td>" + "".join(f"<td>{esc(v)}</td>" for v in config.values()) + "</tr>"
        for name, config in streams.items()
    )
    stream_head = "".join(f"<th>{esc(k)}</th>" for k in next(iter(streams.values()), {}).keys())
    index = (
        f"<h1>{esc(doc['info']['title'])} {esc(doc['info']['version'])}</h1>"
        f"{paragraphs(doc['info'].get('description', '').split('**Subject.**')[0])}"
        f"<h2>Streams</h2><table><tr><th>stream</th>{stream_head}</tr>{stream_rows}</table>"
        f"<h2>Events</h2><table><tr><th>stream</th><th>type</th><th>what</th><th>producer</th></tr>{table}</table>"
    )
    (out / "index.html").write_text(page("shequ events", index), encoding="utf-8")
    return len(rows)


def field_type(field):
    """A field's type as the .proto file writes it."""
    return field.get("typeName", "").lstrip(".") or field.get("type", "").replace("TYPE_", "").lower()


def render_grpc(out, image_path):
    image = json.loads(pathlib.Path(image_path).read_text(encoding="utf-8"))
    files = [f for f in image["file"] if f["name"].startswith("shequ/")]
    body = ["<h1>shequ gRPC API</h1>"]
    count = 0
    for f in sorted(files, key=lambda f: f["name"]):
        comments = {
            tuple(loc.get("path", [])): loc.get("leadingComments", "").strip()
            for loc in f.get("sourceCodeInfo", {}).get("location", [])
        }

        def doc(*path):
            text = comments.get(tuple(path), "")
            return f"<div class=\"muted\">{paragraphs(text.replace(chr(10) + ' ', chr(10)))}</div>" if text else ""

        package = f.get("package", "")
        body.append(f"<h2><code>{esc(f['name'])}</code></h2><p>package <code>{esc(package)}</code></p>{doc(2)}")
        for si, service in enumerate(f.get("service", [])):
            count += 1
            body.append(f"<h3 id=\"{esc(package)}.{esc(service['name'])}\">service {esc(service['name'])}</h3>{doc(6, si)}")
            rows = "".join(
                f"<tr><td><code>{esc(m['name'])}</code></td><td><code>{esc(m['inputType'].lstrip('.'))}</code></td>"
                f"<td><code>{esc(m['outputType'].lstrip('.'))}</code></td><td>{doc(6, si, 2, mi)}</td></tr>"
                for mi, m in enumerate(service.get("method", []))
            )
            body.append(f"<table><tr><th>method</th><th>request</th><th>response</th><th></th></tr>{rows}</table>")
        for mi, message in enumerate(f.get("messageType", [])):
            rows = "".join(
                f"<tr><td><code>{esc(field['name'])}</code></td><td>{esc(field['number'])}</td>"
                f"<td><code>{esc(field_type(field))}</code>"
                f"{' (repeated)' if field.get('label') == 'LABEL_REPEATED' else ''}</td><td>{doc(4, mi, 2, fi)}</td></tr>"
                for fi, field in enumerate(message.get("field", []))
            )
            body.append(
                f"<h4 id=\"{esc(package)}.{esc(message['name'])}\">message {esc(message['name'])}</h4>{doc(4, mi)}"
                f"<table><tr><th>field</th><th>#</th><th>type</th><th></th></tr>{rows}</table>"
            )
        for ei, enum in enumerate(f.get("enumType", [])):
            rows = "".join(
                f"<tr><td><code>{esc(v['name'])}</code></td><td>{esc(v.get('number', 0))}</td><td>{doc(5, ei, 2, vi)}</td></tr>"
                for vi, v in enumerate(enum.get("value", []))
            )
            body.append(f"<h4>enum {esc(enum['name'])}</h4>{doc(5, ei)}<table>{rows}</table>")
    (out / "grpc.html").write_text(page("shequ gRPC API", "".join(body)), encoding="utf-8")
    return len(files), count


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    events = render_events(out)
    files, services = render_grpc(out, sys.argv[2])
    print(f"wrote {out}/index.html: {events} event pages; {out}/grpc.html: {services} services in {files} files")


if __name__ == "__main__":
    main()
