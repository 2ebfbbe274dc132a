// Tests never inherit the user's FacetFS environment: a FACET_PASSPHRASE, FACET_HOME or
// FACET_LOG_LEVEL exported in the shell must not change what a test sees, nor reach the
// `facet` processes tests spawn (they inherit process.env); a test that wants one sets it.
// FACET_TEST_* (where the test database is, e.g. FACET_TEST_PG_URL) configure the run and stay.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('FACET_') && !name.startsWith('FACET_TEST_')) delete process.env[name]
}
