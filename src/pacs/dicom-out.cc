/* SPDX-License-Identifier: MIT
 *
 * The DICOM objects a push sends back, written with DCMTK (dcmsr for the
 * structured report's content tree and its IOD rules, dcmdata for the
 * data sets and the Part 10 file), behind the C interface of
 * pacs-private.h; no C++ exception or DCMTK object crosses into C.
 *
 *   - a Comprehensive SR shaped as TID 1500 (Measurement Report): the
 *     document title (126000, DCM, "Imaging Measurement Report"), its
 *     language, the device observer, the procedure reported, an image
 *     library of the films measured, and under (126010, DCM, "Imaging
 *     Measurements") one measurement group per comparison, each with its
 *     tracking identifier and UID and its measurements, each measurement
 *     INFERRED FROM the films it was read from. Completion PARTIAL,
 *     verification UNVERIFIED: a measure, not a read;
 *   - a Secondary Capture (RGB) of the change overlay, DERIVED, with a
 *     Source Image Sequence naming the films it was made from.
 *
 * Both take the patient and study attributes of the film they describe
 * (Patient's Name, ID, Birth Date, Sex, Study Instance UID, Date, Time,
 * ID, Accession Number, Referring Physician, Specific Character Set) from
 * its DICOM file, read up to its pixel data, so they file into that study
 * in any viewer.
 */
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include <unistd.h>

#include <dcmtk/config/osconfig.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <glib/gstdio.h>

extern "C" {
#include "cxr/error.h"
#include "dicom-private.h" /* CXR_DCMTK_EXPORT: this file is in the module cxrtrack-dcmtk */
#include "pacs-private.h"
}

/* The patient and study module attributes a new object of the study
 * takes from its film. */
static const DcmTagKey study_tags[] = {
  DCM_SpecificCharacterSet,
  DCM_PatientName,
  DCM_PatientID,
  DCM_IssuerOfPatientID,
  DCM_PatientBirthDate,
  DCM_PatientSex,
  DCM_StudyInstanceUID,
  DCM_StudyDate,
  DCM_StudyTime,
  DCM_StudyID,
  DCM_AccessionNumber,
  DCM_ReferringPhysicianName,
  DCM_StudyDescription,
};

static gboolean
fail (GError **error, const char *what, const char *name, OFCondition c)
{
  g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "%s: %s: %s", name, what, c.text ());
  return FALSE;
}

/* Copies the study's attributes from the film at @source into @ds. */
static gboolean
copy_study (const char *source, DcmDataset *ds, GError **error)
{
  DcmFileFormat film;
  OFCondition c = film.loadFileUntilTag (source, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect,
                                         DCM_PixelData);
  if (c.bad ())
    return fail (error, "cannot read the film's header", source, c);
  DcmDataset *from = film.getDataset ();
  for (const DcmTagKey &tag : study_tags)
    {
      OFString value;
      if (from->findAndGetOFStringArray (tag, value).good () && !value.empty ())
        ds->putAndInsertOFStringArray (tag, value);
      else if (tag == DCM_SpecificCharacterSet)
        delete ds->remove (tag); /* type 1C: absent means the default repertoire */
      else
        ds->putAndInsertString (tag, ""); /* type 2: present, empty */
    }
  OFString uid;
  if (ds->findAndGetOFString (DCM_StudyInstanceUID, uid).bad () || uid.empty ())
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: no Study Instance UID: nothing to file the results into", source);
      return FALSE;
    }
  return TRUE;
}

/* The series and instance attributes every object of a push has. */
static void
put_series (DcmDataset *ds, const CxrPushObject *o, const char *modality)
{
  char number[16];
  ds->putAndInsertString (DCM_Modality, modality);
  ds->putAndInsertString (DCM_SeriesInstanceUID, o->series_uid);
  ds->putAndInsertString (DCM_SOPInstanceUID, o->instance_uid);
  g_snprintf (number, sizeof number, "%d", o->series_number);
  ds->putAndInsertString (DCM_SeriesNumber, number);
  g_snprintf (number, sizeof number, "%d", o->instance_number > 0 ? o->instance_number : 1);
  ds->putAndInsertString (DCM_InstanceNumber, number);
  ds->putAndInsertString (DCM_SeriesDescription, o->series_description);
  ds->putAndInsertString (DCM_Manufacturer, "cxrtrack");
  ds->putAndInsertString (DCM_SoftwareVersions, o->software_version);
  ds->putAndInsertString (DCM_ContentDate, o->content_date);
  ds->putAndInsertString (DCM_ContentTime, o->content_time);
  ds->putAndInsertString (DCM_InstanceCreationDate, o->content_date);
  ds->putAndInsertString (DCM_InstanceCreationTime, o->content_time);
}

/* The Part 10 file of @ff, in memory. */
static GBytes *
encode (DcmFileFormat &ff, const char *what, GError **error)
{
  char *tmp = NULL;
  int fd = g_file_open_tmp ("cxrtrack-push-XXXXXX.dcm", &tmp, error);
  if (fd < 0)
    return NULL;
  close (fd);
  OFCondition c = ff.saveFile (tmp, EXS_LittleEndianExplicit);
  GBytes *out = NULL;
  if (c.bad ())
    fail (error, "cannot be written", what, c);
  else
    {
      char *data = NULL;
      gsize n = 0;
      if (g_file_get_contents (tmp, &data, &n, error))
        out = g_bytes_new_take (data, n);
    }
  g_unlink (tmp);
  g_free (tmp);
  return out;
}

static DSRCodedEntryValue
code (const CxrSrCode &c)
{
  return DSRCodedEntryValue (c.value, c.scheme, c.meaning);
}

/* Adds @kind below the tree's current item, moves to it, and checks. */
#define ADD(rel, vt, concept)                                                                      \
  do                                                                                               \
    {                                                                                              \
      OFCondition c_ = tree.addChildContentItem (DSRTypes::rel, DSRTypes::vt, concept);            \
      if (c_.bad ())                                                                               \
        return fail (error, "SR content", (concept).getCodeMeaning ().c_str (), c_);               \
    }                                                                                              \
  while (0)

static gboolean
add_item (DSRDocumentTree &tree, const CxrSrDoc *doc, const CxrSrItem *it, GError **error)
{
  DSRCodedEntryValue concept = code (it->concept);
  OFCondition c;
  switch (it->kind)
    {
    case CXR_SR_NUM:
      {
        ADD (RT_contains, VT_Num, concept);
        char v[32];
        g_snprintf (v, sizeof v, "%.6g", it->value);
        c = tree.getCurrentContentItem ().setNumericValue (
            DSRNumericMeasurementValue (v, code (it->unit)));
        break;
      }
    case CXR_SR_TEXT:
      ADD (RT_contains, VT_Text, concept);
      c = tree.getCurrentContentItem ().setStringValue (it->text);
      break;
    case CXR_SR_CODE:
      ADD (RT_contains, VT_Code, concept);
      c = tree.getCurrentContentItem ().setCodeValue (code (it->code));
      break;
    }
  if (c.bad ())
    return fail (error, "SR value", it->concept.meaning, c);
  if (it->site.value)
    {
      ADD (RT_hasConceptMod, VT_Code, DSRCodedEntryValue ("363698007", "SCT", "Finding Site"));
      tree.getCurrentContentItem ().setCodeValue (code (it->site));
      tree.goUp ();
    }
  for (int k = 0; k < 2; k++)
    {
      if (it->refs[k] < 0)
        continue;
      const CxrSrImage *im = &g_array_index (doc->images, CxrSrImage, it->refs[k]);
      ADD (RT_inferredFrom, VT_Image,
           DSRCodedEntryValue ("121112", "DCM", "Source of Measurement"));
      c = tree.getCurrentContentItem ().setImageReference (
          DSRImageReferenceValue (im->sop_class_uid, im->sop_instance_uid));
      if (c.bad ())
        return fail (error, "SR image reference", im->sop_instance_uid, c);
      tree.goUp ();
    }
  tree.goUp ();
  return TRUE;
}

static gboolean
build_tree (DSRDocumentTree &tree, const CxrSrDoc *doc, GError **error)
{
  if (tree.addContentItem (DSRTypes::RT_isRoot, DSRTypes::VT_Container) == 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "SR: no root container");
      return FALSE;
    }
  tree.getCurrentContentItem ().setConceptName (
      DSRCodedEntryValue ("126000", "DCM", "Imaging Measurement Report"));
  ADD (RT_hasConceptMod, VT_Code,
       DSRCodedEntryValue ("121049", "DCM", "Language of Content Item and Descendants"));
  tree.getCurrentContentItem ().setCodeValue (
      DSRCodedEntryValue ("en-US", "RFC5646", "English (United States)"));
  tree.goUp ();
  ADD (RT_hasObsContext, VT_Code, DSRCodedEntryValue ("121005", "DCM", "Observer Type"));
  tree.getCurrentContentItem ().setCodeValue (DSRCodedEntryValue ("121007", "DCM", "Device"));
  tree.goUp ();
  ADD (RT_hasObsContext, VT_UIDRef, DSRCodedEntryValue ("121012", "DCM", "Device Observer UID"));
  tree.getCurrentContentItem ().setStringValue (doc->device_uid);
  tree.goUp ();
  ADD (RT_hasObsContext, VT_Text, DSRCodedEntryValue ("121013", "DCM", "Device Observer Name"));
  tree.getCurrentContentItem ().setStringValue ("cxrtrack");
  tree.goUp ();
  ADD (RT_hasObsContext, VT_Text,
       DSRCodedEntryValue ("121015", "DCM", "Device Observer Model Name"));
  tree.getCurrentContentItem ().setStringValue (doc->algorithm);
  tree.goUp ();
  ADD (RT_hasConceptMod, VT_Code, DSRCodedEntryValue ("121058", "DCM", "Procedure reported"));
  tree.getCurrentContentItem ().setCodeValue (
      DSRCodedEntryValue ("399208008", "SCT", "Plain X-ray of chest"));
  tree.goUp ();

  ADD (RT_contains, VT_Container, DSRCodedEntryValue ("111028", "DCM", "Image Library"));
  ADD (RT_contains, VT_Container, DSRCodedEntryValue ("126200", "DCM", "Image Library Group"));
  for (guint i = 0; i < doc->images->len; i++)
    {
      const CxrSrImage *im = &g_array_index (doc->images, CxrSrImage, i);
      if (tree.addContentItem (DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_belowCurrent)
          == 0)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "SR image library: %s not added",
                       im->sop_instance_uid);
          return FALSE;
        }
      OFCondition c = tree.getCurrentContentItem ().setImageReference (
          DSRImageReferenceValue (im->sop_class_uid, im->sop_instance_uid));
      if (c.bad ())
        return fail (error, "SR image library", im->sop_instance_uid, c);
      tree.goUp ();
    }
  tree.goUp (); /* the group */
  tree.goUp (); /* the library */

  ADD (RT_contains, VT_Container, DSRCodedEntryValue ("126010", "DCM", "Imaging Measurements"));
  for (guint g = 0; g < doc->groups->len; g++)
    {
      const CxrSrGroup *grp = (const CxrSrGroup *) doc->groups->pdata[g];
      ADD (RT_contains, VT_Container, DSRCodedEntryValue ("125007", "DCM", "Measurement Group"));
      ADD (RT_hasObsContext, VT_Text, DSRCodedEntryValue ("112039", "DCM", "Tracking Identifier"));
      tree.getCurrentContentItem ().setStringValue (grp->tracking_id);
      tree.goUp ();
      ADD (RT_hasObsContext, VT_UIDRef,
           DSRCodedEntryValue ("112040", "DCM", "Tracking Unique Identifier"));
      tree.getCurrentContentItem ().setStringValue (grp->tracking_uid);
      tree.goUp ();
      for (guint i = 0; i < grp->items->len; i++)
        if (!add_item (tree, doc, &g_array_index (grp->items, CxrSrItem, i), error))
          return FALSE;
      tree.goUp ();
    }
  tree.goUp ();
  return TRUE;
}
#undef ADD

static GBytes *
sr_encode (const CxrSrDoc *doc, GError **error)
{
  DSRDocument sr (DSRTypes::DT_ComprehensiveSR);
  if (!build_tree (sr.getTree (), doc, error))
    return NULL;
  sr.setManufacturer ("cxrtrack");
  DcmFileFormat ff;
  DcmDataset *ds = ff.getDataset ();
  OFCondition c = sr.write (*ds);
  if (c.bad ())
    {
      fail (error, "cannot be written", "SR", c);
      return NULL;
    }
  if (!copy_study (doc->object.source, ds, error))
    return NULL;
  put_series (ds, &doc->object, "SR");
  return encode (ff, "SR", error);
}

static GBytes *
sc_encode (const CxrPushObject *o, const guint8 *rgb, int width, int height,
           const CxrSrImage *sources, guint n_sources, const char *derivation, GError **error)
{
  DcmFileFormat ff;
  DcmDataset *ds = ff.getDataset ();
  if (!copy_study (o->source, ds, error))
    return NULL;
  put_series (ds, o, "OT");
  ds->putAndInsertString (DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds->putAndInsertString (DCM_ConversionType, "WSD");
  ds->putAndInsertString (DCM_ImageType, "DERIVED\\SECONDARY");
  ds->putAndInsertString (DCM_DerivationDescription, derivation);
  ds->putAndInsertString (DCM_BurnedInAnnotation, "NO");
  ds->putAndInsertString (DCM_PatientOrientation, "");
  ds->putAndInsertUint16 (DCM_SamplesPerPixel, 3);
  ds->putAndInsertString (DCM_PhotometricInterpretation, "RGB");
  ds->putAndInsertUint16 (DCM_PlanarConfiguration, 0);
  ds->putAndInsertUint16 (DCM_Rows, (Uint16) height);
  ds->putAndInsertUint16 (DCM_Columns, (Uint16) width);
  ds->putAndInsertUint16 (DCM_BitsAllocated, 8);
  ds->putAndInsertUint16 (DCM_BitsStored, 8);
  ds->putAndInsertUint16 (DCM_HighBit, 7);
  ds->putAndInsertUint16 (DCM_PixelRepresentation, 0);
  for (guint i = 0; i < n_sources; i++)
    {
      DcmItem *item = NULL;
      if (ds->findOrCreateSequenceItem (DCM_SourceImageSequence, item, -2).good ())
        {
          item->putAndInsertString (DCM_ReferencedSOPClassUID, sources[i].sop_class_uid);
          item->putAndInsertString (DCM_ReferencedSOPInstanceUID, sources[i].sop_instance_uid);
        }
    }
  OFCondition c
      = ds->putAndInsertUint8Array (DCM_PixelData, rgb, (unsigned long) width * height * 3);
  if (c.bad ())
    {
      fail (error, "cannot hold the pixels", "secondary capture", c);
      return NULL;
    }
  return encode (ff, "secondary capture", error);
}

/**
 * cxr__sr_encode:
 *
 * Returns: (transfer full): the SR of @doc as a Part 10 file, or %NULL
 * with @error set.
 */
CXR_DCMTK_EXPORT GBytes *
cxr__sr_encode (const CxrSrDoc *doc, GError **error)
{
  try
    {
      return sr_encode (doc, error);
  } catch (const std::bad_alloc &)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "SR: out of memory");
      return NULL;
  }
}

/**
 * cxr__sc_encode:
 * @rgb: @width x @height pixels, 3 bytes each
 * @sources: the films the picture was made from
 *
 * Returns: (transfer full): a Secondary Capture of @rgb as a Part 10
 * file, or %NULL with @error set.
 */
CXR_DCMTK_EXPORT GBytes *
cxr__sc_encode (const CxrPushObject *object, const guint8 *rgb, int width, int height,
                const CxrSrImage *sources, guint n_sources, const char *derivation, GError **error)
{
  try
    {
      return sc_encode (object, rgb, width, height, sources, n_sources, derivation, error);
  } catch (const std::bad_alloc &)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "secondary capture: out of memory");
      return NULL;
  }
}
