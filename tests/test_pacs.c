/* SPDX-License-Identifier: MIT
 *
 * The DICOMweb client's checks of what a server sends (net/dicomweb.c)
 * and the push's derived UIDs (pacs/push.c): a UID from the server is
 * used in a URL or a file name only if it is one; a DICOM JSON value is
 * read whatever its kind; a derived UID is the same on every machine
 * (checked against Python's hashlib), valid, and differs for other text.
 * The requests themselves run against a real Orthanc and a badly
 * answering server in tests/cli/dicomweb.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "dicomweb-private.h"
#include "pacs-private.h"

static void
test_uid_ok (void **state)
{
  assert_true (cxr__dicom_uid_ok ("1.2.840.10008.5.1.4.1.1.7"));
  assert_true (cxr__dicom_uid_ok ("2.25.184073029931686865464898986830276495543"));
  assert_false (cxr__dicom_uid_ok (NULL));
  assert_false (cxr__dicom_uid_ok (""));
  assert_false (cxr__dicom_uid_ok ("../../etc"));
  assert_false (cxr__dicom_uid_ok ("1.2/3"));
  assert_false (cxr__dicom_uid_ok ("1..2"));
  assert_false (cxr__dicom_uid_ok (".1.2"));
  assert_false (cxr__dicom_uid_ok ("1.2."));
  assert_false (cxr__dicom_uid_ok ("1.2.3 "));
  /* 64 characters, then 65 */
  char uid[66];
  memset (uid, '1', 65);
  uid[65] = '\0';
  uid[1] = '.';
  assert_false (cxr__dicom_uid_ok (uid));
  uid[64] = '\0';
  assert_true (cxr__dicom_uid_ok (uid));
}

static void
test_json_string (void **state)
{
  const char *json = "{\"00100020\": {\"vr\": \"LO\", \"Value\": [\"1543\"]},"
                     " \"00100010\": {\"vr\": \"PN\", \"Value\": [{\"Alphabetic\": \"A^B\"}]},"
                     " \"00201208\": {\"vr\": \"IS\", \"Value\": [3]},"
                     " \"00280030\": {\"vr\": \"DS\", \"Value\": [0.143]},"
                     " \"00080060\": {\"vr\": \"CS\"},"
                     " \"00080061\": {\"vr\": \"CS\", \"Value\": []},"
                     " \"00080018\": \"not an attribute\"}";
  g_autoptr (JsonParser) p = json_parser_new ();
  assert_true (json_parser_load_from_data (p, json, -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  g_autofree char *id = cxr__dicom_json_string (o, "00100020");
  g_autofree char *name = cxr__dicom_json_string (o, "00100010");
  g_autofree char *n = cxr__dicom_json_string (o, "00201208");
  g_autofree char *ds = cxr__dicom_json_string (o, "00280030");
  assert_string_equal (id, "1543");
  assert_string_equal (name, "A^B");
  assert_string_equal (n, "3");
  assert_string_equal (ds, "0.143");
  assert_null (cxr__dicom_json_string (o, "00080060")); /* no Value */
  assert_null (cxr__dicom_json_string (o, "00080061")); /* empty */
  assert_null (cxr__dicom_json_string (o, "00080018")); /* not an object */
  assert_null (cxr__dicom_json_string (o, "0020000D")); /* absent */
}

static void
test_uid_from_text (void **state)
{
  g_autofree char *a = cxr__uid_from_text ("cxrtrack test");
  g_autofree char *b = cxr__uid_from_text ("cxrtrack test");
  g_autofree char *c = cxr__uid_from_text ("cxrtrack test.");
  /* hashlib.sha256(b"cxrtrack test"), version 8 and variant bits set, as
   * an integer of its first 16 bytes */
  assert_string_equal (a, "2.25.184073029931686865464898986830276495543");
  assert_string_equal (a, b);
  assert_string_not_equal (a, c);
  assert_true (cxr__dicom_uid_ok (c));
}

static void
test_client_refuses (void **state)
{
  g_autoptr (GError) err = NULL;
  assert_null (cxr__dicomweb_new ("ftp://pacs/dicom-web", NULL, NULL, 5, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  g_clear_error (&err);
  /* nothing listens on port 1: the error names the request */
  g_autoptr (CxrDicomweb) c
      = cxr__dicomweb_new ("http://127.0.0.1:1/dicom-web/", NULL, NULL, 5, &err);
  assert_non_null (c);
  assert_string_equal (cxr__dicomweb_url (c), "http://127.0.0.1:1/dicom-web");
  assert_null (cxr__dicomweb_search (c, "studies", "PatientID=1", 10, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_NETWORK));
  assert_non_null (strstr (err->message, "GET http://127.0.0.1:1/dicom-web/studies?PatientID=1"));
}

static void
test_auth_file (void **state)
{
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("cxr-auth-XXXXXX", &path, NULL);
  assert_true (fd >= 0);
  close (fd);
  g_autoptr (GError) err = NULL;
  assert_true (g_file_set_contents (path, "  user:pa ss  \nsecond line\n", -1, NULL));
  g_autofree char *a = cxr_dicomweb_auth_read (path, &err);
  assert_string_equal (a, "user:pa ss");
  assert_true (g_file_set_contents (path, "\n", -1, NULL));
  assert_null (cxr_dicomweb_auth_read (path, &err));
  assert_non_null (strstr (err->message, "empty"));
  g_unlink (path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_uid_ok),        cmocka_unit_test (test_json_string),
    cmocka_unit_test (test_uid_from_text), cmocka_unit_test (test_client_refuses),
    cmocka_unit_test (test_auth_file),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
