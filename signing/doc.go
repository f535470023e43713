// Package signing stamps official documents (công văn) with an agency seal
// and verifies them, as standard S/MIME (RFC 8551) that any mail client or
// `openssl smime -verify` can check.
//
// A stamped message is multipart/signed over a multipart/mixed entity that
// holds the original body parts, a short bilingual stamp text and
// manifest.xml, which lists the document's edXML metadata and the SHA-256 of
// every attachment. The detached signature is CMS SignedData (RFC 5652)
// with SHA-256 and the signingTime and signing-certificate-v2 (RFC 5035)
// signed attributes.
//
// The package is pure: it neither stores nor sends anything. Callers assign
// document numbers, keep registers and deliver the bytes.
package signing
