/* SPDX-License-Identifier: MIT
 *
 * Runs a fuzz entry point over files, without a fuzzer: each argument is
 * a file or a folder of files (a corpus), given to LLVMFuzzerTestOneInput
 * once. CI builds the entry points with this to replay their corpora, so
 * an input that once crashed stays a test. Exit 0 when every input ran.
 */
#include <stdint.h>
#include <stdio.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
run_file (const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, NULL))
    {
      fprintf (stderr, "replay: cannot read %s\n", path);
      return 1;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  return 0;
}

int
main (int argc, char **argv)
{
  int n = 0, bad = 0;
  for (int i = 1; i < argc; i++)
    {
      if (!g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          bad += run_file (argv[i]);
          n++;
          continue;
        }
      GDir *d = g_dir_open (argv[i], 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        {
          g_autofree char *p = g_build_filename (argv[i], name, NULL);
          bad += run_file (p);
          n++;
        }
      if (d)
        g_dir_close (d);
    }
  printf ("replay: %d inputs\n", n);
  return bad ? 1 : 0;
}
