package nixdb

// DirectWriter lets the external tests build a database through SQLite's
// own inserts, to compare.
var DirectWriter = &directWriter
