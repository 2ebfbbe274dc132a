/** The demo's mount points, in mount order, with what each holds: `facet --help` lists them. */
export const DEMO_MOUNTS: readonly (readonly [path: string, what: string])[] = [
  ['/hello', 'a read-only example view of planets'],
  ['/scratch', 'a writable folder held in memory'],
  ['/db', 'an embedded PostgreSQL (PGlite) with a small library, one file per row'],
  ['/proc', "FacetFS's own figures"],
  ['/datasets', 'the dataset store read-only, NAME/TAG/… (facet dataset push), beside /files'],
  ['/files', 'an encrypted chain, when a passphrase is set or typed'],
]
