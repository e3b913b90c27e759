/* SPDX-License-Identifier: MIT
 *
 * A tiny cache of the films a patient job needs at once: the baseline,
 * and the film, its previous one and the one before that (for the chain
 * checks), each with its preparation for registration, so that a film
 * registered with three others is decoded and prepared once. Four slots,
 * whatever the length of the series; slot 0 keeps the first film loaded
 * (the jobs load the baseline first), the others are reused least
 * recently used first, so the two films returned last stay valid.
 */
#include <string.h>

#include "film-cache-private.h"

void
cxr__film_cache_init (CxrFilmCache *c, const CxrImageLimits *limits, const CxrRegisterOptions *reg,
                      const CxrLungModel *lung_model)
{
  memset (c, 0, sizeof *c);
  c->limits = limits;
  c->reg = reg;
  c->lung_model = lung_model;
}

void
cxr__film_cache_clear (CxrFilmCache *c)
{
  for (int i = 0; i < CXR_FILM_CACHE_SLOTS; i++)
    {
      cxr_image_free (c->im[i]);
      cxr_register_film_free (c->prep[i]);
      cxr_lung_fields_free (c->lungs[i]);
      g_free (c->cavity[i]);
    }
  memset (c->im, 0, sizeof c->im);
  memset (c->cavity, 0, sizeof c->cavity);
  memset (c->prep, 0, sizeof c->prep);
  memset (c->lungs, 0, sizeof c->lungs);
}

/* The slot holding film @id, loaded if need be; -1 if it cannot be read. */
static int
slot_of (CxrFilmCache *c, gint64 id, const char *path, const char *sha256, GError **error)
{
  for (int i = 0; i < CXR_FILM_CACHE_SLOTS; i++)
    if (c->im[i] && c->id[i] == id)
      {
        c->used[i] = ++c->clock;
        return i;
      }
  CxrImage *im = cxr_image_load_checked (path, sha256, c->limits, NULL, error);
  if (im == NULL)
    return -1;
  guint slot = 0;
  if (c->im[0] != NULL)
    {
      slot = 1;
      for (guint i = 2; i < CXR_FILM_CACHE_SLOTS; i++)
        if (c->used[i] < c->used[slot])
          slot = i;
    }
  cxr_image_free (c->im[slot]);
  g_clear_pointer (&c->prep[slot], cxr_register_film_free);
  g_clear_pointer (&c->lungs[slot], cxr_lung_fields_free);
  g_clear_pointer (&c->cavity[slot], g_free);
  c->im[slot] = im;
  c->id[slot] = id;
  c->used[slot] = ++c->clock;
  return (int) slot;
}

/* The lung fields of the film in @slot, found on first use. */
static const CxrLungFields *
lungs_of (CxrFilmCache *c, int slot, GError **error)
{
  if (c->lung_model == NULL)
    return NULL;
  if (c->lungs[slot] == NULL)
    c->lungs[slot] = cxr_lungs_segment (c->lung_model, c->im[slot], error);
  return c->lungs[slot];
}

/**
 * cxr__film_cache_image:
 * Film @id, decoded from @path if need be, provided the file still has
 * the SHA-256 it was ingested with (@sha256; %NULL: not checked).
 *
 * Returns: (transfer none): the film, valid until two other films have
 * been asked for; %NULL with @error set if it cannot be read.
 */
const CxrImage *
cxr__film_cache_image (CxrFilmCache *c, gint64 id, const char *path, const char *sha256,
                       GError **error)
{
  int slot = slot_of (c, id, path, sha256, error);
  return slot >= 0 ? c->im[slot] : NULL;
}

/**
 * cxr__film_cache_prepared:
 * Film @id prepared for registration with pixel aspect @aspect (0 or
 * less: square), read and prepared if need be.
 *
 * Returns: (transfer none): as cxr__film_cache_image().
 */
const CxrRegisterFilm *
cxr__film_cache_prepared (CxrFilmCache *c, gint64 id, const char *path, const char *sha256,
                          double aspect, GError **error)
{
  int slot = slot_of (c, id, path, sha256, error);
  if (slot < 0)
    return NULL;
  if (!(aspect > 0))
    aspect = 1.0; /* 0 (or NULL in the store) means square */
  if (c->prep[slot] == NULL || c->aspect[slot] != aspect)
    {
      g_clear_pointer (&c->prep[slot], cxr_register_film_free);
      /* compared over the thorax that the lung fields outline, where they
       * are plausible */
      const CxrLungFields *l = lungs_of (c, slot, NULL);
      c->prep[slot] = cxr_register_film_new_lungs (c->im[slot], aspect, l, c->reg, error);
      c->aspect[slot] = aspect;
    }
  return c->prep[slot];
}

/**
 * cxr__film_cache_lungs:
 * The lung fields of film @id, found on first use (with the cache's lung
 * model; %NULL without one, or when the film cannot be read).
 */
const CxrLungFields *
cxr__film_cache_lungs (CxrFilmCache *c, gint64 id, const char *path, const char *sha256,
                       GError **error)
{
  int slot = slot_of (c, id, path, sha256, error);
  return slot >= 0 ? lungs_of (c, slot, error) : NULL;
}

/**
 * cxr__film_cache_cavity:
 * The whole lung of film @id (cxr_lungs_cavity), made on first use from
 * its lung fields where they are 'ok'; %NULL otherwise. A film is
 * compared in two or three pairs: its whole lung is found once.
 */
const guint8 *
cxr__film_cache_cavity (CxrFilmCache *c, gint64 id, const char *path, const char *sha256)
{
  int slot = slot_of (c, id, path, sha256, NULL);
  const CxrLungFields *l = slot >= 0 ? lungs_of (c, slot, NULL) : NULL;
  if (l == NULL || l->status != CXR_LUNGS_OK)
    return NULL;
  if (c->cavity[slot] == NULL)
    c->cavity[slot] = cxr_lungs_cavity (l);
  return c->cavity[slot];
}
