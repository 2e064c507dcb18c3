// Package config turns vipd's YAML configuration file into a validated,
// typed Config.
//
// Parsing walks the yaml.Node tree rather than unmarshalling into structs,
// so that every problem — unknown field, wrong type, value out of range,
// duplicate — is reported with the file, line and field path of the node
// that caused it, and all problems are reported at once (see Error and
// Errors). Limits follow RFC 9568 where the protocol sets them, for example
// the 12-bit advertisement interval in centiseconds (§5.2.7).
//
// configs/vipd.yaml in the repository is the commented reference example;
// a test parses it so it stays valid.
package config
