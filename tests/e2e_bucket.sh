# publish and pull against real servers started here on 127.0.0.1: nginx
# (Debian's) with WebDAV PUT and basic auth, s3rver (npm) for S3, and
# tests/bucket_server.py for the faults and for a captured S3 request; and
# a file:// bucket.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${MT_SHARED:-$HERE/../../shared}
S3RVER=${S3RVER:-$HERE/../.tools/s3rver/node_modules/.bin/s3rver}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || fail "nginx is not installed (ci/install.sh installs it)"
[ -x "$S3RVER" ] || fail "s3rver is not installed in .tools (ci/install.sh installs it)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
export MOETUNE_RETRY_BACKOFF_MS=50
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# same_files DIR1 DIR2: every file of DIR1 (a bucket's device folders, less
# manifests) is in DIR2 (a flat cache), byte for byte
same_files() {
  local n=0
  for f in "$1"/*/*; do
    [ "$(basename "$f")" = manifest.json ] && continue
    cmp -s "$f" "$2/$(basename "$f")" || fail "$(basename "$f") differs between the bucket and the cache"
    n=$((n + 1))
  done
  [ $n -gt 0 ] || fail "no files compared"
  ok
}
start_server() { # MODE DIR -> sets PORT
  rm -f "$TMP/port"
  python3 "$HERE/bucket_server.py" --dir "$2" --port-file "$TMP/port" --mode "$1" --capture "$TMP/capture.jsonl" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
  PORT=$(cat "$TMP/port")
}

# what there is to publish: a CPU sweep and three imported vLLM files (three
# more devices)
DB=$TMP/a.db
"$MT" sweep --db "$DB" --model tiny --batch-sizes 1,2 --budget 2 --no-export --quiet >/dev/null
# this machine's CPU as the sweep named it (it differs between machines)
CPU=$(sql "$DB" "select name from devices where backend = 'cpu'")
case "$CPU" in CPU_?*) ok ;; *) fail "the CPU device's name: '$CPU'" ;; esac
for f in "E=128,N=384,device_name=NVIDIA_H100_80GB_HBM3.json" "E=1,N=1792,device_name=NVIDIA_A100-SXM4-80GB.json" \
         "E=128,N=384,device_name=AMD_Instinct_MI300X,dtype=fp8_w8a8,block_shape=[128,128].json"; do
  [ -f "$SHARED/data/vllm-configs/$f" ] || fail "missing test data $f"
  "$MT" import --db "$DB" "$SHARED/data/vllm-configs/$f" >/dev/null
done

# --- file://
expect_exit 0 "$TMP/pf" "$MT" publish "file://$TMP/fb" --db "$DB"
expect_in "$TMP/pf" "4 device(s), 4 file(s) uploaded, 0 unchanged"
[ -f "$TMP/fb/$CPU/manifest.json" ] || fail "the CPU's manifest ($CPU)"; ok
[ "$(ls "$TMP"/fb/*/manifest.json | wc -l)" = 4 ] || fail "one manifest per device"; ok
expect_exit 0 "$TMP/pf2" "$MT" publish "file://$TMP/fb" --db "$DB"
expect_in "$TMP/pf2" "0 file(s) uploaded, 4 unchanged"
expect_exit 0 "$TMP/lf" "$MT" pull "file://$TMP/fb" --cache "$TMP/cf" --db "$TMP/pulled.db"
expect_in "$TMP/lf" "4 device(s), 4 file(s) fetched, 0 unchanged, 3 imported into the database"
same_files "$TMP/fb" "$TMP/cf"
[ "$(sql "$TMP/pulled.db" "select count(distinct device_id) from measurements where status='foreign'")" = 3 ] \
  || fail "the vLLM files pulled are foreign rows of 3 devices"; ok
expect_exit 0 "$TMP/lf2" "$MT" pull "file://$TMP/fb" --cache "$TMP/cf" --no-db
expect_in "$TMP/lf2" "0 file(s) fetched, 4 unchanged"
# the runtime finds what was pulled: lookup through the cache
expect_exit 0 "$TMP/lk" env XDG_CACHE_HOME="$TMP/xc" "$MT" pull "file://$TMP/fb" --device NVIDIA_H100_80GB_HBM3 --no-db
expect_exit 0 "$TMP/lk2" env XDG_CACHE_HOME="$TMP/xc" "$MT" lookup --experts 128 --intermediate 384 \
  --device-name NVIDIA_H100_80GB_HBM3 --batch 64
expect_in "$TMP/lk2" "cache"

# --- faults on pull: a corrupt file, a missing file, a name that escapes
cp -r "$TMP/fb" "$TMP/fbad"
H100=$TMP/fbad/NVIDIA_H100_80GB_HBM3
f=$(ls "$H100" | grep -v manifest)
printf ' ' >>"$H100/$f"
expect_exit 1 "$TMP/cor" "$MT" pull "file://$TMP/fbad" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cbad" --no-db
expect_in "$TMP/cor" "more than the"
cp -r "$TMP/fb" "$TMP/fbad2"
python3 - "$TMP/fbad2/NVIDIA_H100_80GB_HBM3/$f" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read()); d[0] ^= 1; open(sys.argv[1], "wb").write(d)
PY
expect_exit 1 "$TMP/cor0" "$MT" pull "file://$TMP/fbad2" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cbad" --no-db
expect_in "$TMP/cor0" "does not match its manifest"
expect_in "$TMP/cor" "nothing of NVIDIA_H100_80GB_HBM3 replaced"
[ ! -e "$TMP/cbad/$f" ] || fail "a corrupt file reached the cache"; ok
# a cached copy that the manifest still names is not fetched again; when
# the manifest moves on to a file that does not arrive intact, the good copy
# pulled before stays
expect_exit 0 "$TMP/cor1" "$MT" pull "file://$TMP/fbad" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cf" --no-db
expect_in "$TMP/cor1" "0 file(s) fetched, 1 unchanged"
cp "$TMP/cf/$f" "$TMP/good"
python3 - "$H100/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"][0]["sha256"] = "1" * 64
json.dump(m, open(sys.argv[1], "w"))
PY
expect_exit 1 "$TMP/cor2" "$MT" pull "file://$TMP/fbad" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cf" --no-db
expect_in "$TMP/cor2" "nothing of NVIDIA_H100_80GB_HBM3 replaced"
cmp -s "$TMP/cf/$f" "$TMP/good" || fail "a good cached file was replaced by a corrupt one"; ok
rm "$H100/$f"
expect_exit 1 "$TMP/mis" "$MT" pull "file://$TMP/fbad" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cbad" --no-db
expect_in "$TMP/mis" "which the bucket lacks"
python3 - "$H100/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"] = [{"name": "../../evil.json", "sha256": "0" * 64, "size": 1}]
json.dump(m, open(sys.argv[1], "w"))
PY
expect_exit 1 "$TMP/esc" "$MT" pull "file://$TMP/fbad" --device NVIDIA_H100_80GB_HBM3 --cache "$TMP/cbad" --no-db
expect_in "$TMP/esc" "could escape the cache"
[ ! -e "$TMP/evil.json" ] && [ ! -e "$TMP/cbad/../evil.json" ] || fail "a file was written outside the cache"; ok
# a device's folder carries only its own files: a manifest of the A100
# that ships a file named for the H100 is refused, and nothing moves
cp -r "$TMP/fb" "$TMP/fpo"
A100=$TMP/fpo/NVIDIA_A100-SXM4-80GB
h=$(ls "$TMP/fb/NVIDIA_H100_80GB_HBM3" | grep -v manifest)
cp "$TMP/fb/NVIDIA_H100_80GB_HBM3/$h" "$A100/"
python3 - "$A100/manifest.json" "$A100/$h" <<'PY'
import hashlib, json, os, sys
m = json.load(open(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
m["files"].append({"name": os.path.basename(sys.argv[2]), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
json.dump(m, open(sys.argv[1], "w"))
PY
expect_exit 1 "$TMP/poi" "$MT" pull "file://$TMP/fpo" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/cpo" --db "$TMP/po.db"
expect_in "$TMP/poi" "not a config file of NVIDIA_A100-SXM4-80GB but of NVIDIA_H100_80GB_HBM3"
[ -z "$(ls -A "$TMP/cpo" 2>/dev/null)" ] || fail "a poisoned manifest left files in the cache: $(ls -A "$TMP/cpo")"; ok
mkdir -p "$TMP/empty"
expect_exit 0 "$TMP/poi2" "$MT" lookup --experts 128 --intermediate 384 --device-name NVIDIA_H100_80GB_HBM3 --batch 64 \
  --cache-dir "$TMP/cpo" --bundled-dir "$TMP/empty" --tuned-dir "$TMP/empty"
expect_in "$TMP/poi2" '"source":"default"'
# a name twice: refused before anything moves (the first copy would have)
cp -r "$TMP/fb" "$TMP/fdup"
python3 - "$TMP/fdup/NVIDIA_A100-SXM4-80GB/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"].append(dict(m["files"][0]))
json.dump(m, open(sys.argv[1], "w"))
PY
expect_exit 1 "$TMP/dup" "$MT" pull "file://$TMP/fdup" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/cdup" --no-db
expect_in "$TMP/dup" "twice"
[ -z "$(ls -A "$TMP/cdup" 2>/dev/null)" ] || fail "a manifest with a name twice moved files: $(ls -A "$TMP/cdup")"; ok
# the pulled manifest is written through a temporary and a rename: a link
# planted in its place is replaced, its target untouched
mkdir -p "$TMP/clink/.manifests"
echo precious >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/clink/.manifests/NVIDIA_A100-SXM4-80GB.json"
expect_exit 0 "$TMP/lnk" "$MT" pull "file://$TMP/fb" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/clink" --no-db
[ "$(cat "$TMP/victim")" = precious ] || fail "pull wrote through a link to a file outside the cache"; ok
[ -f "$TMP/clink/.manifests/NVIDIA_A100-SXM4-80GB.json" ] && [ ! -L "$TMP/clink/.manifests/NVIDIA_A100-SXM4-80GB.json" ] \
  || fail "the manifest is not a plain file"; ok
# a .manifests that is a link out of the cache is refused
mkdir -p "$TMP/clink2" "$TMP/outside"
ln -s "$TMP/outside" "$TMP/clink2/.manifests"
expect_exit 1 "$TMP/lnk2" "$MT" pull "file://$TMP/fb" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/clink2" --no-db
expect_in "$TMP/lnk2" "is not a folder"
[ -z "$(ls -A "$TMP/outside")" ] || fail "pull wrote outside the cache"; ok
# a FIFO where a file should be blocks nothing: refused at once
cp -r "$TMP/fb" "$TMP/ffifo"
g=$(ls "$TMP/ffifo/NVIDIA_A100-SXM4-80GB" | grep -v manifest)
rm "$TMP/ffifo/NVIDIA_A100-SXM4-80GB/$g"
mkfifo "$TMP/ffifo/NVIDIA_A100-SXM4-80GB/$g"
expect_exit 1 "$TMP/fifo" timeout 20 "$MT" pull "file://$TMP/ffifo" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/cfifo" --no-db
expect_in "$TMP/fifo" "not a regular file"
# a full disk: the cache's files are there (nothing to fetch), only the
# pulled manifest is written, and the disk has no room: an error and exit 1,
# never an empty manifest and exit 0 (a small tmpfs; skipped where mounting
# is not allowed)
mkdir -p "$TMP/full"
if mount -t tmpfs -o size=64k tmpfs "$TMP/full" 2>/dev/null; then
  trap 'umount "$TMP/full" 2>/dev/null || true; for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
  expect_exit 0 "$TMP/fd0" "$MT" pull "file://$TMP/fb" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/full/c" --no-db
  rm -f "$TMP/full/c/.manifests/NVIDIA_A100-SXM4-80GB.json"
  dd if=/dev/zero of="$TMP/full/fill" bs=1k count=1000 2>/dev/null || true
  expect_exit 1 "$TMP/fd" "$MT" pull "file://$TMP/fb" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/full/c" --no-db
  expect_in "$TMP/fd" "No space left on device"
  [ ! -e "$TMP/full/c/.manifests/NVIDIA_A100-SXM4-80GB.json" ] || fail "a full disk left a manifest behind"; ok
  [ -z "$(ls "$TMP/full/c/.manifests" | grep tmp)" ] || fail "a temporary file was left on the full disk"; ok
  umount "$TMP/full"
else
  echo "skipped the full-disk pull: this machine does not let the test mount a tmpfs"
fi
# a missing bucket: the error alone, no summary line
expect_exit 1 "$TMP/nob" "$MT" pull "file://$TMP/no-such-bucket" --cache "$TMP/cnob" --no-db
grep -q "pulled from" "$TMP/nob" && fail "a failed pull printed a summary"; ok
expect_exit 2 "$TMP/bad1" "$MT" publish "http://user:secret@127.0.0.1:1/x" --db "$DB"
expect_in "$TMP/bad1" "the URL holds credentials"
grep -q secret "$TMP/bad1" "$TMP/bad1.err" && fail "the password was printed"; ok
expect_exit 2 "$TMP/bad2" "$MT" publish "ftp://example/x" --db "$DB"
expect_exit 2 "$TMP/bad3" "$MT" pull "file://$TMP/fb" --device ../etc --cache "$TMP/c3"
expect_in "$TMP/bad3" "is not a device name"

# --- nginx: WebDAV PUT with basic auth, listing by autoindex json
NG=$TMP/nginx
mkdir -p "$NG" "$TMP/dav"
NPORT=$(free_port)
echo "moe:$(openssl passwd -apr1 s3cret-pass)" >"$NG/htpasswd"
cat >"$NG/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
error_log $NG/error.log;
pid $NG/nginx.pid;
events {}
http {
  access_log $NG/access.log;
  client_body_temp_path $NG/body;
  proxy_temp_path $NG/proxy;
  fastcgi_temp_path $NG/fastcgi;
  uwsgi_temp_path $NG/uwsgi;
  scgi_temp_path $NG/scgi;
  server {
    listen 127.0.0.1:$NPORT;
    root $TMP/dav;
    location / {
      dav_methods PUT;
      create_full_put_path on;
      autoindex on;
      autoindex_format json;
      auth_basic "moetune";
      auth_basic_user_file $NG/htpasswd;
    }
  }
}
EOF
"$NGINX" -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" &
PIDS+=($!)
wait_port $NPORT || { cat "$NG/error.log" >&2; fail "nginx did not start"; }
export MOETUNE_BUCKET_USER=moe MOETUNE_BUCKET_PASSWORD=s3cret-pass
expect_exit 0 "$TMP/pn" "$MT" publish "http://127.0.0.1:$NPORT/fleet" --db "$DB"
expect_in "$TMP/pn" "4 device(s), 4 file(s) uploaded"
expect_exit 0 "$TMP/ln" "$MT" pull "http://127.0.0.1:$NPORT/fleet" --cache "$TMP/cn" --no-db
expect_in "$TMP/ln" "4 device(s), 4 file(s) fetched"
same_files "$TMP/dav/fleet" "$TMP/cn"
MOETUNE_BUCKET_PASSWORD=wrong expect_exit 1 "$TMP/pw" "$MT" publish "http://127.0.0.1:$NPORT/fleet" --db "$DB"
expect_in "$TMP/pw" "HTTP 401: the server refused the credentials"
grep -q "s3cret-pass\|wrong" "$TMP/pw" "$TMP/pw.err" && fail "a password was printed"; ok
expect_exit 1 "$TMP/p404" "$MT" pull "http://127.0.0.1:$NPORT/nothere" --device "$CPU" --cache "$TMP/c404" --no-db
expect_in "$TMP/p404" "no manifest for $CPU"
unset MOETUNE_BUCKET_USER MOETUNE_BUCKET_PASSWORD

# --- s3rver: S3 put, get, list (ListObjectsV2), two publishers with different devices
SPORT=$(free_port)
mkdir -p "$TMP/s3"
"$S3RVER" -d "$TMP/s3" -a 127.0.0.1 -p $SPORT --configure-bucket moetune --silent >"$TMP/s3rver.log" 2>&1 &
PIDS+=($!)
wait_port $SPORT || { cat "$TMP/s3rver.log" >&2; fail "s3rver did not start"; }
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
DB2=$TMP/b.db
"$MT" import --db "$DB2" "$SHARED/data/vllm-configs/E=128,N=384,device_name=NVIDIA_H100_80GB_HBM3.json" >/dev/null 2>&1 || true
"$MT" import --db "$DB2" "$SHARED"/data/vllm-configs/*device_name=NVIDIA_B200* >/dev/null 2>&1 || true
expect_exit 0 "$TMP/ps" "$MT" publish s3://moetune/fleet --endpoint "http://127.0.0.1:$SPORT" --db "$DB"
expect_exit 0 "$TMP/ps2" "$MT" publish s3://moetune/fleet --endpoint "http://127.0.0.1:$SPORT" --db "$DB2"
expect_exit 0 "$TMP/ls" "$MT" pull s3://moetune/fleet --endpoint "http://127.0.0.1:$SPORT" --cache "$TMP/cs" --no-db
python3 - "$TMP/cs" "$SHARED/data/vllm-configs" "$CPU" <<'PY' || fail "both publishers' devices survive in one bucket"
import json, os, sys
ms = {f[:-5]: json.load(open(os.path.join(sys.argv[1], ".manifests", f))) for f in os.listdir(os.path.join(sys.argv[1], ".manifests"))}
assert {sys.argv[3], "NVIDIA_A100-SXM4-80GB", "AMD_Instinct_MI300X", "NVIDIA_H100_80GB_HBM3", "NVIDIA_B200"} <= set(ms), sorted(ms)
for d, m in ms.items():
    for e in m["files"]:
        assert os.path.getsize(os.path.join(sys.argv[1], e["name"])) == e["size"]
PY
ok
# a bucket that is not there: S3's 404, said as such, not retried
expect_exit 1 "$TMP/nb" "$MT" publish s3://no-such-bucket/fleet --endpoint "http://127.0.0.1:$SPORT" --db "$DB"
expect_in "$TMP/nb" "HTTP 404: not there (no such bucket, prefix or object)"
grep -q "trying again" "$TMP/nb.err" && fail "a 404 was retried"; ok
# with the endpoint and region from the environment, and the credentials
# from a file that must be private
CRED=$TMP/aws-credentials
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$CRED"
chmod 644 "$CRED"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_SHARED_CREDENTIALS_FILE="$CRED" AWS_ENDPOINT_URL="http://127.0.0.1:$SPORT"
expect_exit 1 "$TMP/cr" "$MT" pull s3://moetune/fleet --cache "$TMP/cc" --no-db
expect_in "$TMP/cr" "can be read by others (mode 644): chmod 600"
chmod 600 "$CRED"
expect_exit 0 "$TMP/cr2" "$MT" pull s3://moetune/fleet --cache "$TMP/cc" --no-db
expect_in "$TMP/cr2" "file(s) fetched"
unset AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL

# --- the signature, on a captured request
mkdir -p "$TMP/cap"
start_server capture "$TMP/cap"
AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=very-secret-key AWS_REGION=eu-west-3 \
  expect_exit 0 "$TMP/pc" "$MT" publish s3://bkt/pre --endpoint "http://127.0.0.1:$PORT" --db "$DB"
python3 - "$TMP/capture.jsonl" "$TMP/cap" <<'PY' || fail "the S3 requests are not signed as SigV4 with the payload hash"
import hashlib, json, os, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
puts = [r for r in reqs if r["method"] == "PUT"]
assert puts, reqs
for r in reqs:
    h = {k.lower(): v for k, v in r["headers"].items()}
    auth = h["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth
    assert "/eu-west-3/s3/aws4_request" in auth and "SignedHeaders=" in auth and "Signature=" in auth, auth
    assert "x-amz-content-sha256" in auth.split("SignedHeaders=")[1].split(",")[0], auth
    assert h["x-amz-content-sha256"] == r["body_sha256"], (h["x-amz-content-sha256"], r["body_sha256"])
    assert "very-secret-key" not in json.dumps(r)
    assert r["path"].startswith("/bkt/pre/"), r["path"]
# the manifest came last for each device
order = [r["path"] for r in puts]
for d in set(p.split("/")[3] for p in order):
    mine = [p for p in order if p.split("/")[3] == d]
    assert mine[-1].endswith("/manifest.json"), mine
PY
ok
grep -q very-secret-key "$TMP/pc" "$TMP/pc.err" && fail "the secret was printed"; ok

# bearer auth over HTTP, on a captured request
: >"$TMP/capture.jsonl"
MOETUNE_BUCKET_TOKEN=tok-123 expect_exit 0 "$TMP/pbt" "$MT" publish "http://127.0.0.1:$PORT/http" --db "$DB"
python3 - "$TMP/capture.jsonl" <<'PY' || fail "bearer auth"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert reqs and all({k.lower(): v for k, v in r["headers"].items()}.get("authorization") == "Bearer tok-123" for r in reqs)
PY
ok
grep -q tok-123 "$TMP/pbt" "$TMP/pbt.err" && fail "the token was printed"; ok

# --- S3 uploads are checked against the ETag the store answers
mkdir -p "$TMP/be"
start_server badetag "$TMP/be"
AWS_ACCESS_KEY_ID=AKID AWS_SECRET_ACCESS_KEY=sk expect_exit 1 "$TMP/bet" "$MT" publish s3://bkt/pre --endpoint "http://127.0.0.1:$PORT" --db "$DB"
expect_in "$TMP/bet" "is not the MD5 of what was sent"

# --- a server that stalls: the stall timeout ends it
mkdir -p "$TMP/st"
start_server stall "$TMP/st"
t0=$(date +%s)
expect_exit 1 "$TMP/stl" "$MT" publish "http://127.0.0.1:$PORT/b" --db "$DB" --stall-timeout 1 --retries 1
[ $(( $(date +%s) - t0 )) -lt 20 ] || fail "the stall timeout did not cut the transfer"; ok
expect_in "$TMP/stl" "(1 of 1)"

# --- HTTP faults: 500 twice then 200; a dropped connection mid-upload; 403
mkdir -p "$TMP/flaky" "$TMP/drop" "$TMP/deny"
start_server flaky "$TMP/flaky"
expect_exit 0 "$TMP/fl" "$MT" publish "http://127.0.0.1:$PORT/b" --db "$DB"
expect_in "$TMP/fl" "4 device(s), 4 file(s) uploaded"
expect_in "$TMP/fl" "HTTP 500; trying again"
expect_exit 0 "$TMP/fl2" "$MT" pull "http://127.0.0.1:$PORT/b" --cache "$TMP/cfl" --no-db
same_files "$TMP/flaky/b" "$TMP/cfl"
# with no retries allowed, the 500s are the answer
mkdir -p "$TMP/flaky2"
start_server flaky "$TMP/flaky2"
expect_exit 1 "$TMP/fl3" "$MT" publish "http://127.0.0.1:$PORT/b" --db "$DB" --retries 1
expect_in "$TMP/fl3" "HTTP 500"
start_server drop "$TMP/drop"
expect_exit 0 "$TMP/dr" "$MT" publish "http://127.0.0.1:$PORT/b" --db "$DB"
expect_in "$TMP/dr" "trying again"
expect_exit 0 "$TMP/dr2" "$MT" pull "http://127.0.0.1:$PORT/b" --cache "$TMP/cdr" --no-db
same_files "$TMP/drop/b" "$TMP/cdr"
start_server deny "$TMP/deny"
expect_exit 1 "$TMP/dn" "$MT" publish "http://127.0.0.1:$PORT/b" --db "$DB"
expect_in "$TMP/dn" "HTTP 403: the server refused the credentials"
grep -q "trying again" "$TMP/dn.err" && fail "a 403 was retried"; ok
# a body that never ends is cut at the manifest's size, at once and not
# retried; a body at 5 bytes a second is cut by the stall limit; a redirect's
# body is never taken for the manifest
mkdir -p "$TMP/endl"
cp -r "$TMP/fb/NVIDIA_A100-SXM4-80GB" "$TMP/endl/"
start_server endless "$TMP/endl"
t0=$(date +%s)
expect_exit 1 "$TMP/en" timeout 60 "$MT" pull "http://127.0.0.1:$PORT" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/cen" --no-db
expect_in "$TMP/en" "larger than the"
grep -q "trying again" "$TMP/en.err" && fail "an oversized body was fetched again"; ok
[ $(( $(date +%s) - t0 )) -lt 30 ] || fail "the endless body was not cut"; ok
start_server trickle "$TMP/endl"
t0=$(date +%s)
expect_exit 1 "$TMP/tr" timeout 60 "$MT" pull "http://127.0.0.1:$PORT" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/ctr" \
  --no-db --stall-timeout 2 --retries 0
[ $(( $(date +%s) - t0 )) -lt 20 ] || fail "a 5 B/s body was not cut by the stall limit"; ok
[ -z "$(ls -A "$TMP/ctr" | grep -v '^\.')" ] || fail "a trickled file reached the cache"; ok
start_server trickle "$TMP/endl"
expect_exit 1 "$TMP/tr2" timeout 60 "$MT" pull "http://127.0.0.1:$PORT" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/ctr" \
  --no-db --stall-timeout 100 --timeout 3 --retries 0
expect_in "$TMP/tr2" "GET NVIDIA_A100-SXM4-80GB/"
start_server redirect "$TMP/endl"
expect_exit 1 "$TMP/rd" "$MT" pull "http://127.0.0.1:$PORT" --device NVIDIA_A100-SXM4-80GB --cache "$TMP/crd" --no-db
expect_in "$TMP/rd" "HTTP 302 (a redirect)"
[ -z "$(ls -A "$TMP/crd" 2>/dev/null)" ] || fail "a redirect's body was taken"; ok
# a server that is not there: connection refused, retried, then a clear error
DEAD=$(free_port)
expect_exit 1 "$TMP/dead" "$MT" publish "http://127.0.0.1:$DEAD/b" --db "$DB" --retries 2 --connect-timeout 2
expect_in "$TMP/dead" "(2 of 2)"
done_ok
