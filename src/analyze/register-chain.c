/* SPDX-License-Identifier: MIT
 *
 * Chains (transitivity): how well the global transforms of neighbouring
 * films compose, stored as information. For a new film v with previous
 * film p:
 *  - through the previous film: with baseline b (b != p), b->v against
 *    b->p->v (the value is stored on v's baseline row);
 *  - through consecutive films: with pp the film before p (pp != b), pp->v
 *    (registered for this check only, not stored) against pp->p->v (stored
 *    on v's previous row; when pp is b this is the first chain).
 * Distances are at the centre of the first film, in px of a 1024-px film.
 * They no longer decide a status: on real AP series no global transform
 * composes to a few px, whatever the estimator (elastix's chains are as
 * far off), because breathing and posture are not a similarity; the
 * status comes from the pair's own evidence (register.c: do the lungs
 * line up). The chain values stay in the store (transitivity_px) and in
 * analyze's summary ("not chaining").
 */
#include <math.h>

#include "chain-private.h"

void
cxr__series_pair_clear (gpointer pair)
{
  CxrSeriesPair *p = pair;
  cxr__pair_row_clear (&p->row);
  g_free (p->error);
}

void
cxr__series_stored_clear (gpointer stored)
{
  cxr__pair_row_clear (&((CxrSeriesStored *) stored)->row);
}

/* A registration in a chain: this run's (reg points into its pair) or a
 * stored one (st set). */
typedef struct {
  CxrRegistration *reg;
  gint64 fixed_id;
  const CxrPairRow *row;
  CxrSeriesStored *st;
} Link;

/* The registration of film @moving of the given kind (previous or
 * baseline): this run's, else a stored one; reg NULL if there is none or
 * it could not be made. */
static Link
find_link (GArray *pairs, GArray *stored, gint64 moving, gboolean baseline)
{
  Link l = { NULL, 0, NULL, NULL };
  for (guint k = 0; k < pairs->len; k++)
    {
      CxrSeriesPair *p = &g_array_index (pairs, CxrSeriesPair, k);
      if (p->row.moving_id == moving && (baseline ? p->row.is_baseline : p->row.is_previous)
          && !p->error)
        {
          l.reg = &p->reg;
          l.fixed_id = p->row.fixed_id;
          l.row = &p->row;
          return l;
        }
    }
  for (guint k = 0; k < stored->len; k++)
    {
      CxrSeriesStored *st = &g_array_index (stored, CxrSeriesStored, k);
      if (st->row.moving_id == moving && (baseline ? st->row.is_baseline : st->row.is_previous))
        {
          l.reg = &st->row.stored;
          l.fixed_id = st->row.fixed_id;
          l.row = &st->row;
          l.st = st;
          return l;
        }
    }
  return l;
}

/**
 * cxr__chain_skip_needed:
 * Whether the new previous pair @p (p->v) needs pp->v for its consecutive
 * chain, pp being the film before p's fixed film: when pp exists and is
 * not the baseline (else v's baseline row is that registration). Made by
 * the caller while pp, p and v are all at hand.
 *
 * Returns: (nullable) (transfer none): the registration whose fixed film
 * is pp, or %NULL when no such registration is needed.
 */
const CxrPairRow *
cxr__chain_skip_needed (GArray *pairs, GArray *stored, const CxrSeriesPair *p)
{
  Link pp = find_link (pairs, stored, p->row.fixed_id, FALSE);
  Link bv = find_link (pairs, stored, p->row.moving_id, TRUE);
  if (pp.reg == NULL || (bv.reg && bv.fixed_id == pp.fixed_id))
    return NULL;
  return pp.row;
}

/* The pixel aspect of @row's fixed film, as its registration was made
 * with (stored rows: as stored, 1 where unknown). */
double
cxr__chain_fixed_aspect (const CxrPairRow *row)
{
  return row->stored.fixed_aspect > 0 ? row->stored.fixed_aspect : row->fixed_aspect;
}

/* a->b then b->c against a->c at a's centre (the global transforms), in
 * px of a 1024-px film (@norm). */
static double
check (const Link *ab, const Link *bc, const CxrRegistration *ac, double norm)
{
  double x1, y1, x2, y2;
  cxr_register_offset (ab->reg, 0, 0, &x1, &y1);
  cxr_register_offset (bc->reg, x1, y1, &x1, &y1);
  cxr_register_offset (ac, 0, 0, &x2, &y2);
  return hypot (x1 - x2, y1 - y2) * norm;
}

/**
 * cxr__chain_check:
 * The chains of each new film v (moving of a new previous pair p->v),
 * after every pair of @pairs is registered (skips included).
 */
void
cxr__chain_check (GArray *pairs, GArray *stored)
{
  for (guint k = 0; k < pairs->len; k++)
    {
      CxrSeriesPair *p = &g_array_index (pairs, CxrSeriesPair, k);
      if (!p->row.is_previous || p->row.is_baseline || p->error)
        continue;
      Link pv = { &p->reg, p->row.fixed_id, &p->row, NULL };
      Link bp = find_link (pairs, stored, p->row.fixed_id, TRUE);
      Link pp = find_link (pairs, stored, p->row.fixed_id, FALSE);
      CxrSeriesPair *b = NULL; /* v's baseline pair, new with it */
      for (guint q = 0; q < pairs->len && b == NULL; q++)
        {
          CxrSeriesPair *o = &g_array_index (pairs, CxrSeriesPair, q);
          if (o->row.is_baseline && o->row.moving_id == p->row.moving_id && !o->error)
            b = o;
        }
      if (b && bp.reg && bp.fixed_id == b->row.fixed_id)
        {
          b->transitivity_px = check (&bp, &pv, &b->reg, p->norm);
          if (pp.reg && pp.fixed_id == b->row.fixed_id)
            p->chain_prev_px = b->transitivity_px;
        }
      if (p->has_skip) /* pp found as when the skip was made */
        p->chain_prev_px = check (&pp, &pv, &p->skip, p->norm);
    }
}
