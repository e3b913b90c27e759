# SPDX-License-Identifier: MIT
# A private Orthanc with its DICOMweb plugin, for tests/cli/dicomweb.sh and
# the PACS benchmarks (sourced, not run):
#
#   orthanc_available          0 when Orthanc and the plugin are installed
#   orthanc_start DIR [USER:PASSWORD]
#       starts one on 127.0.0.1 (a free port, storage and log in DIR, the
#       DICOM port off, HTTP Basic with the credentials given), waits until
#       it answers; sets ORTHANC (its REST root), ORTHANC_URL (its DICOMweb
#       root) and ORTHANC_PID (kill it when done)
#   orthanc_upload FILE...     stores each file into it (REST /instances)
ORTHANC_PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so

orthanc_available() {
  command -v Orthanc > /dev/null && [ -f "$ORTHANC_PLUGIN" ]
}

orthanc_start() {
  _dir=$1
  ORTHANC_USER=${2:-}
  _port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  _auth=false
  _users="{}"
  if [ -n "$ORTHANC_USER" ]; then
    _auth=true
    _users="{ \"${ORTHANC_USER%%:*}\": \"${ORTHANC_USER#*:}\" }"
  fi
  mkdir -p "$_dir/orthanc"
  cat > "$_dir/orthanc.json" << JSON
{ "Name": "cxrtrack-test", "StorageDirectory": "$_dir/orthanc", "IndexDirectory": "$_dir/orthanc",
  "HttpPort": $_port, "DicomServerEnabled": false, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": $_auth, "RegisteredUsers": $_users,
  "Plugins": ["$ORTHANC_PLUGIN"], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
  Orthanc "$_dir/orthanc.json" > "$_dir/orthanc.log" 2>&1 &
  ORTHANC_PID=$!
  ORTHANC="http://127.0.0.1:$_port"
  ORTHANC_URL="$ORTHANC/dicom-web"
  orthanc_python 'import time
for i in range(300):
    try:
        get("/system"); break
    except Exception:
        time.sleep(0.1)
else:
    sys.exit("Orthanc did not start on " + root)'
}

# orthanc_python CODE [ARG...]: CODE with root, sys.argv[1:] = ARGs and
# get(path, data=None) reaching the REST API with the credentials
orthanc_python() {
  _code=$1
  shift
  /usr/bin/python3 -c "import base64, sys, urllib.request
root, user = '$ORTHANC', '$ORTHANC_USER'
headers = {'Authorization': 'Basic ' + base64.b64encode(user.encode()).decode()} if user else {}
def get(path, data=None):
    return urllib.request.urlopen(urllib.request.Request(root + path, data=data, headers=headers)).read()
$_code" "$@"
}

orthanc_upload() {
  orthanc_python 'for f in sys.argv[1:]:
    get("/instances", open(f, "rb").read())' "$@"
}
