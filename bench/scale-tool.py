#!/usr/bin/env python3
"""scale-tool.py: the HTTP side of bench/scale-bench.sh (standard library only, keep-alive connections).

  fill URL FROM TO [THREADS]   creates repositories FROM..TO-1 (bench names, see name()): each gets a unique
                               config blob (monolithic POST ?digest=), the shared layer (cross-repository mount
                               from bench/layer), an OCI manifest PUT as tags v1 and latest; prints repositories/s
  tags URL REPO COUNT          one repository with COUNT tags (one manifest, PUT COUNT times); prints tags/s
  page URL PATH [REPEAT]       GET PATH REPEAT times (default 7) on one connection; prints the median in ms
  walk URL PATH                follows the Link headers from PATH; prints seconds, pages and names
  first URL PATH T0            polls PATH every 2 ms until it answers 200; prints seconds since T0 (epoch seconds)
  name I                       the I-th bench repository name; late-last URL N K prints the name K before the end
"""
import hashlib
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

LAYER = b"the layer every bench repository shares\n" * 64
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def name(i):
    # 100 teams, so names nest and the catalog's order is not the order of creation.
    return f"team{i % 100:02d}/app{i:07d}"


def connect(url):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, response.getheader("Location"), response.getheader("Link"), data


def expect(status, wanted, what, data):
    if status not in wanted:
        raise SystemExit(f"scale-tool: {what}: HTTP {status} {data[:300]!r}")


def push_blob(conn, repository, blob):
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    status, location, _, data = request(conn, "POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", blob,
                                 {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))})
    if status == 202:
        # A registry without the single-request POST (distribution 2.8): PUT the content to the session it opened.
        location = urllib.parse.urlparse(location)
        query = (location.query + "&" if location.query else "") + "digest=" + digest
        status, _, _, data = request(conn, "PUT", f"{location.path}?{query}", blob,
                                     {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))})
    expect(status, (201,), f"push blob to {repository}", data)
    return digest


def manifest_for(repository, conn):
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"bench.repository": repository}},
                         "rootfs": {"type": "layers", "diff_ids": [LAYER_DIGEST]}}, sort_keys=True).encode()
    config_digest = push_blob(conn, repository, config)
    return json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": LAYER_DIGEST, "size": len(LAYER)}],
    }, sort_keys=True).encode()


def put_manifest(conn, repository, tag, manifest):
    status, _, _, data = request(conn, "PUT", f"/v2/{repository}/manifests/{tag}", manifest, {"Content-Type": MANIFEST_TYPE})
    expect(status, (201,), f"put {repository}:{tag}", data)


def mount_layer(conn, repository):
    status, location, _, data = request(conn, "POST", f"/v2/{repository}/blobs/uploads/?mount={LAYER_DIGEST}&from=bench/layer")
    if status == 202:
        # Not mounted (a registry may decline): push it instead, ending the session it opened.
        request(conn, "DELETE", urllib.parse.urlparse(location).path)
        push_blob(conn, repository, LAYER)
        return
    expect(status, (201,), f"mount the layer into {repository}", data)


def in_parallel(url, items, step, threads=8):
    """Runs step(connection, item) for every item on THREADS keep-alive connections; returns items/s."""
    counter = iter(items)
    lock = threading.Lock()
    errors = []

    def work():
        c = connect(url)
        try:
            while True:
                with lock:
                    item = next(counter, None)
                if item is None:
                    return
                step(c, item)
        except BaseException as e:  # noqa: BLE001 - reported below, the run fails
            errors.append(e)

    start = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(f"scale-tool: {errors[0]}")
    return len(items) / (time.monotonic() - start)


def fill(url, first, last, threads=8):
    push_blob(connect(url), "bench/layer", LAYER)

    def create(c, i):
        repository = name(i)
        mount_layer(c, repository)
        manifest = manifest_for(repository, c)
        put_manifest(c, repository, "v1", manifest)
        put_manifest(c, repository, "latest", manifest)

    print(f"{in_parallel(url, range(first, last), create, threads):.1f}")


def tags(url, repository, count, threads=8):
    conn = connect(url)
    push_blob(conn, "bench/layer", LAYER)
    mount_layer(conn, repository)
    manifest = manifest_for(repository, conn)
    print(f"{in_parallel(url, range(count), lambda c, i: put_manifest(c, repository, f'build-{i:05d}', manifest), threads):.1f}")


def page(url, path, repeat=7):
    conn = connect(url)
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        status, _, _, data = request(conn, "GET", path)
        times.append(time.monotonic() - start)
        expect(status, (200,), f"GET {path}", data)
    print(f"{statistics.median(times) * 1000:.2f}")


def walk(url, path):
    conn = connect(url)
    start = time.monotonic()
    pages = names = 0
    while path:
        status, _, link, data = request(conn, "GET", path)
        expect(status, (200,), f"GET {path}", data)
        body = json.loads(data)
        names += len(body.get("repositories") or body.get("tags") or [])
        pages += 1
        path = link.split(">")[0].lstrip("<") if link else None
        if path and path.startswith("http"):
            path = urllib.parse.urlparse(path)._replace(scheme="", netloc="").geturl()
    print(f"{time.monotonic() - start:.3f} {pages} {names}")


def first(url, path, t0):
    while True:
        try:
            conn = connect(url)
            status, _, _, _ = request(conn, "GET", path)
            if status == 200:
                print(f"{time.time() - t0:.3f}")
                return
        except (OSError, http.client.HTTPException):
            # Not listening yet; or, polling a free port in the ephemeral range, a connection that met itself (TCP
            # simultaneous open: the request comes back as the answer).
            pass
        time.sleep(0.002)


def late_last(count, before):
    names = sorted(name(i) for i in range(count))
    print(names[max(0, len(names) - before)])


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fill":
        fill(args[0], int(args[1]), int(args[2]), *(int(a) for a in args[3:]))
    elif command == "tags":
        tags(args[0], args[1], int(args[2]))
    elif command == "page":
        page(args[0], args[1], *(int(a) for a in args[2:]))
    elif command == "walk":
        walk(args[0], args[1])
    elif command == "first":
        first(args[0], args[1], float(args[2]))
    elif command == "name":
        print(name(int(args[0])))
    elif command == "late-last":
        late_last(int(args[0]), int(args[1]))
    else:
        raise SystemExit(__doc__)
