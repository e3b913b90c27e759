/* SPDX-License-Identifier: MIT
 *
 * The DICOMweb source of ingest (cxrtrack ingest --dicomweb URL): the
 * chest films of a PACS, fetched into a cache folder and then stored
 * exactly as `ingest --dicom` stores a folder (ingest-dicom.c: the same
 * identity by SOP Instance UID, the same checks and reasons, no
 * identifiers in the store).
 *
 *   1. QIDO-RS: the studies with CR or DX films (ModalitiesInStudy, one
 *      search per modality, merged), narrowed by --patient and --since;
 *      a patient of another shard is passed over here, before any film
 *      of theirs is fetched;
 *   2. per study, QIDO-RS of its instances; an instance of another
 *      modality (a report, a secondary capture, cxrtrack's own results
 *      pushed back) is not a film and is not fetched; one whose Body Part
 *      Examined, in the PACS's index, is not the chest is reported as
 *      --dicom reports it and not fetched; one already in the store is not
 *      fetched either, so a second pull fetches nothing;
 *   3. WADO-RS of each remaining instance into CACHE/STUDY/SOP.dcm,
 *      renamed into place only once whole (net/dicomweb.c), so a killed
 *      pull leaves whole films or none; one fetched by a pull that was
 *      killed before storing it is stored without being fetched again.
 *
 * cxrtrack watch pulls every few seconds: it keeps each study's Number of
 * Study Related Instances from the search, and a study pulled whole whose
 * count has not changed is not listed again, so a poll of an unchanged
 * PACS is the study search alone.
 *
 * A study or instance the server fails (an HTTP error, a timeout, a
 * truncated or mistyped answer, a film over the size limit) is noted with
 * its UIDs and the server's answer and counted; the rest of the pull goes
 * on, and nothing stored before is touched. Only a failed study search
 * stops the run: without it there is nothing to pull.
 *
 * The cache holds the films as the PACS sent them, names included: it is
 * made readable by its owner only (0700). The store keeps no identifier.
 */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/error.h"
#include "dicomweb-private.h"
#include "ingest-private.h"

#define PAGE 500 /* matches per QIDO request */

/* The modalities of instances fetched: projection radiographs. */
static gboolean
is_film_modality (const char *m)
{
  static const char *const films[] = { "CR", "DX", "DR", "RG" };
  if (m == NULL)
    return TRUE; /* not said: the header decides */
  for (guint i = 0; i < G_N_ELEMENTS (films); i++)
    if (g_str_equal (m, films[i]))
      return TRUE;
  return FALSE;
}

typedef struct {
  char *uid;
  char *patient_id;
  char *n_instances; /* Number of Study Related Instances, as sent, or NULL */
} Study;

static void
study_free (Study *s)
{
  g_free (s->uid);
  g_free (s->patient_id);
  g_free (s->n_instances);
  g_free (s);
}

/* "YYYY-MM-DD" or "YYYYMMDD" -> "YYYYMMDD" */
static gboolean
dicom_date (const char *text, char out[9])
{
  char iso[11];
  if (!cxr__ingest_parse_date (text, iso))
    return FALSE;
  memcpy (out, iso, 4);
  memcpy (out + 4, iso + 5, 2);
  memcpy (out + 6, iso + 8, 2);
  out[8] = '\0';
  return TRUE;
}

/* The studies to pull, in the server's order, each once. */
static GPtrArray *
find_studies (CxrDicomweb *c, const CxrIngestOptions *opt, CxrIngestSummary *sum, GError **error)
{
  const CxrDicomwebPull *p = &opt->dicomweb;
  static const char *const modalities[] = { "CR", "DX" };
  GPtrArray *studies = g_ptr_array_new_with_free_func ((GDestroyNotify) study_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  char since[9] = "";
  if (p->since && !dicom_date (p->since, since))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "--since '%s': not a date (YYYY-MM-DD)", p->since);
      g_ptr_array_unref (studies);
      return NULL;
    }
  /* one search per patient asked for (or one for all) and per modality */
  guint n_patients = p->patients ? g_strv_length ((char **) p->patients) : 0;
  for (guint k = 0; k < MAX (n_patients, 1); k++)
    for (guint m = 0; m < G_N_ELEMENTS (modalities); m++)
      {
        g_autoptr (GString) q = g_string_new (NULL);
        g_string_append_printf (q, "ModalitiesInStudy=%s", modalities[m]);
        if (n_patients)
          {
            g_autofree char *id = g_uri_escape_string (p->patients[k], NULL, FALSE);
            g_string_append_printf (q, "&PatientID=%s", id);
          }
        if (*since)
          g_string_append_printf (q, "&StudyDate=%s-", since);
        g_string_append (q, "&includefield=00100020&includefield=00201208");
        g_autoptr (GPtrArray) found = cxr__dicomweb_search (c, "studies", q->str, PAGE, error);
        if (found == NULL)
          {
            g_ptr_array_unref (studies);
            return NULL;
          }
        for (guint i = 0; i < found->len; i++)
          {
            g_autofree char *uid = cxr__dicom_json_string (found->pdata[i], "0020000D");
            if (uid && g_hash_table_contains (seen, uid))
              continue; /* found by the other modality's search */
            if (uid)
              g_hash_table_add (seen, g_strdup (uid));
            if (!cxr__dicom_uid_ok (uid))
              {
                sum->n_fetch_failed++;
                cxr__ingest_note (sum, "%s: a study whose Study Instance UID is %s%s%s: skipped",
                                  cxr__dicomweb_url (c), uid ? "'" : "missing", uid ? uid : "",
                                  uid ? "', not a UID" : "");
                continue;
              }
            Study *s = g_new0 (Study, 1);
            s->patient_id = cxr__dicom_json_string (found->pdata[i], "00100020");
            s->n_instances = cxr__dicom_json_string (found->pdata[i], "00201208");
            s->uid = g_steal_pointer (&uid);
            g_ptr_array_add (studies, s);
          }
      }
  return studies;
}

/* Fetches what is new of one study; its films' paths appended to @files. */
static void
pull_study (CxrDicomweb *c, CxrScanWriter *writer, const Study *s, const char *cache,
            const CxrIngestOptions *opt, CxrIngestSummary *sum, GPtrArray *files,
            GHashTable *listed)
{
  g_autofree char *path = g_strdup_printf ("studies/%s/instances", s->uid);
  g_autoptr (GError) err = NULL;
  g_autoptr (GPtrArray) found
      = cxr__dicomweb_search (c, path, "includefield=00080060&includefield=00180015", PAGE, &err);
  if (found == NULL)
    {
      sum->n_fetch_failed++;
      cxr__ingest_note (sum, "study %s: its instances cannot be listed: %s", s->uid, err->message);
      return;
    }
  g_autofree char *dir = g_build_filename (cache, s->uid, NULL);
  for (guint i = 0; i < found->len; i++)
    {
      g_autofree char *sop = cxr__dicom_json_string (found->pdata[i], "00080018");
      g_autofree char *series = cxr__dicom_json_string (found->pdata[i], "0020000E");
      g_autofree char *modality = cxr__dicom_json_string (found->pdata[i], "00080060");
      g_autofree char *body_part = cxr__dicom_json_string (found->pdata[i], "00180015");
      if (!is_film_modality (modality))
        continue;
      if (!cxr__ingest_is_chest (body_part))
        {
          /* a row of the source, reported as --dicom reports it, never fetched */
          sum->n_rows++;
          sum->n_rejected++;
          cxr__ingest_note (sum,
                            "study %s, instance %s: Body Part Examined '%s' (the PACS's index): "
                            "not a chest film, not fetched",
                            s->uid, sop ? sop : "without a UID", body_part);
          continue;
        }
      if (!cxr__dicom_uid_ok (sop) || !cxr__dicom_uid_ok (series))
        {
          sum->n_fetch_failed++;
          cxr__ingest_note (sum,
                            "study %s: an instance without a valid SOP Instance UID (%s) or "
                            "Series Instance UID (%s): not fetched",
                            s->uid, sop ? sop : "missing", series ? series : "missing");
          continue;
        }
      if (g_hash_table_contains (listed, sop))
        continue; /* listed twice (by two searches, or a server's repeat) */
      g_hash_table_add (listed, g_strdup (sop));
      CxrStoredScan stored;
      g_clear_error (&err);
      if (!cxr__scan_writer_lookup (writer, sop, &stored, &err))
        {
          cxr__ingest_note (sum, "study %s, instance %s: %s", s->uid, sop, err->message);
          sum->n_fetch_failed++;
          continue;
        }
      gboolean known = stored.scan_id > 0;
      cxr__stored_scan_clear (&stored);
      if (known)
        {
          sum->n_known++;
          continue;
        }
      g_autofree char *name = g_strconcat (sop, ".dcm", NULL);
      g_autofree char *dest = g_build_filename (dir, name, NULL);
      if (!g_file_test (dest, G_FILE_TEST_IS_REGULAR))
        {
          if (g_mkdir_with_parents (dir, 0700) != 0)
            {
              sum->n_fetch_failed++;
              cxr__ingest_note (sum, "%s: cannot be made: %s", dir, g_strerror (errno));
              continue;
            }
          g_clear_error (&err);
          if (!cxr__dicomweb_retrieve_instance (c, s->uid, series, sop, dest,
                                                opt->limits.max_file_bytes, &err))
            {
              sum->n_fetch_failed++;
              cxr__ingest_note (sum, "study %s, instance %s: not fetched: %s", s->uid, sop,
                                err->message);
              g_rmdir (dir); /* when it holds nothing else */
              continue;
            }
          sum->n_fetched++;
        }
      g_ptr_array_add (files, g_steal_pointer (&dest));
    }
}

/**
 * cxr__dicomweb_pull:
 * @writer: the run's writer: what it already holds is not fetched
 * @cache: the folder films are fetched into (made by the caller)
 * @files: (element-type filename): the films to store, appended: those
 *   fetched now and those fetched before but never stored
 *
 * Returns: %FALSE only when the studies cannot be searched (@error set);
 * failures of single studies and instances are counted and noted in @sum.
 */
gboolean
cxr__dicomweb_pull (CxrScanWriter *writer, const char *url, const char *cache,
                    const CxrIngestOptions *opt, CxrIngestSummary *sum, GPtrArray *files,
                    GError **error)
{
  g_autoptr (CxrDicomweb) c = cxr__dicomweb_new (url, opt->dicomweb.auth, opt->dicomweb.ca_file,
                                                 opt->dicomweb.timeout_s, error);
  if (c == NULL)
    return FALSE;
  g_autoptr (GPtrArray) studies = find_studies (c, opt, sum, error);
  if (studies == NULL)
    return FALSE;
  g_autoptr (GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < studies->len; i++)
    {
      const Study *s = studies->pdata[i];
      if (s->patient_id && opt->shard.n > 0)
        {
          g_autofree char *id = opt->patient_prefix
                                    ? g_strconcat (opt->patient_prefix, s->patient_id, NULL)
                                    : g_strdup (s->patient_id);
          if (!cxr_shard_contains (&opt->shard, id))
            continue; /* another machine's patient */
        }
      sum->n_studies++;
      GHashTable *counts = opt->dicomweb.study_counts;
      if (counts && s->n_instances
          && g_strcmp0 (g_hash_table_lookup (counts, s->uid), s->n_instances) == 0)
        {
          sum->n_studies_same++; /* pulled whole before, and no instance since */
          continue;
        }
      guint64 failed = sum->n_fetch_failed;
      pull_study (c, writer, s, cache, opt, sum, files, listed);
      if (counts && s->n_instances && sum->n_fetch_failed == failed)
        g_hash_table_insert (counts, g_strdup (s->uid), g_strdup (s->n_instances));
    }
  return TRUE;
}
