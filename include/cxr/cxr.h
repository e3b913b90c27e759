/* SPDX-License-Identifier: MIT
 *
 * libcxr: following a patient's chest X-rays over time. Umbrella header.
 */
#pragma once

#include "csv.h"
#include "diff.h"
#include "error.h"
#include "image.h"
#include "ingest.h"
#include "lungs.h"
#include "model.h"
#include "pipeline.h"
#include "progression.h"
#include "register.h"
#include "report.h"
#include "safetensors.h"
#include "severity.h"
#include "shard.h"
#include "signal.h"
#include "trend.h"
#include "store.h"

const char *cxr_version (void);
void cxr_tune_allocator (void);
