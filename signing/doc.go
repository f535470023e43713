// Package signing stamps official documents (công văn) with an agency seal
// and verifies them, as standard S/MIME (RFC 8551) that any mail client or
// `openssl smime -verify` can check.
//
// A stamped message is multipart/signed over a multipart/mixed entity that
// holds the original body parts, a short bilingual stamp text and
// manifest.xml: the document's edXML MessageHeader (QCVN 102:2016 element
// names) and an edXMLManifest listing every attachment with its size and
// SHA-256 (manifest version 2; version 1, our own names, is still read). The detached signature is CMS SignedData (RFC 5652)
// with SHA-256 and the signingTime and signing-certificate-v2 (RFC 5035)
// signed attributes. A seal with a Timestamper adds an RFC 3161 token over
// the signature value as the unsigned attribute id-aa-timeStampToken, and
// Verify, given the TSA's roots, judges the seal at the token's time.
//
// The package stores nothing and sends nothing except time-stamp requests
// to a Timestamper. Callers assign document numbers, keep registers and
// deliver the bytes.
package signing
