/* SPDX-License-Identifier: MIT
 *
 * What goes back to a PACS (push.c), and the DICOM objects it is written
 * as (dicom-out.cc, DCMTK's dcmsr and dcmdata): a Comprehensive SR holding
 * one film's comparison with its prior and its baseline, and a Secondary
 * Capture of the change overlay. Both join the study of the film they
 * describe: its patient and study attributes are copied from its DICOM
 * file when the object is written (the store holds no identifier).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A coded concept: (value, scheme, meaning). */
typedef struct {
  const char *value, *scheme, *meaning;
} CxrSrCode;

/* A film an object refers to. */
typedef struct {
  char *sop_class_uid, *sop_instance_uid;
} CxrSrImage;

typedef enum { CXR_SR_NUM, CXR_SR_TEXT, CXR_SR_CODE } CxrSrKind;

/* One measurement or statement of a group: a NUM (value and unit), a
 * TEXT or a CODE, with an optional finding site, inferred from up to two
 * of the document's images. */
typedef struct {
  CxrSrKind kind;
  CxrSrCode concept;
  double value;   /* NUM */
  CxrSrCode unit; /* NUM */
  char *text;     /* TEXT */
  CxrSrCode code; /* CODE */
  CxrSrCode site; /* .value NULL: none */
  int refs[2];    /* indexes into the document's images, -1 none */
} CxrSrItem;

typedef struct {
  char *tracking_id;  /* e.g. "change since prior" */
  char *tracking_uid; /* the group's UID */
  GArray *items;      /* CxrSrItem */
} CxrSrGroup;

/* What both objects of a push share. */
typedef struct {
  const char *source;     /* the film's DICOM file: patient and study are copied from it */
  const char *series_uid; /* the new series */
  const char *instance_uid;
  int series_number;
  int instance_number; /* 0: 1 */
  const char *series_description;
  const char *software_version;
  const char *content_date; /* YYYYMMDD of the analysis */
  const char *content_time; /* HHMMSS */
} CxrPushObject;

typedef struct {
  CxrPushObject object;
  const char *device_uid; /* the observer device */
  const char *algorithm;  /* model name and version */
  GArray *images;         /* CxrSrImage: the films measured */
  GPtrArray *groups;      /* CxrSrGroup */
} CxrSrDoc;

GBytes *cxr__sr_encode (const CxrSrDoc *doc, GError **error);
GBytes *cxr__sc_encode (const CxrPushObject *object, const guint8 *rgb, int width, int height,
                        const CxrSrImage *sources, guint n_sources, const char *derivation,
                        GError **error);

char *cxr__uid_from_text (const char *text);

G_END_DECLS
