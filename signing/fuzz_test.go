package signing

import (
	"errors"
	"testing"
	"time"
)

// FuzzManifest feeds arbitrary signed parts (the bytes under the S/MIME
// signature) to the manifest check, which parses their MIME, decodes
// manifest.xml and hashes the attachments: it must answer with a manifest
// or a reasoned failure, never panic. A real stamped document is a seed
// (version 2, edXML names), and so is one stamped by the previous version
// (testdata/fuzz/FuzzManifest/manifest-v1, version 1); inputs the fuzzer
// finds go beside it and run in every go test. Search for more with 'go test -run XXX -fuzz FuzzManifest
// -fuzztime 5m -parallel 1 ./signing'.
func FuzzManifest(f *testing.F) {
	a := newPKI(f, agencyA, testNow, testNow)
	env, err := openSigned(stamped(f, a.seal, testNow))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env.entity, env.from)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n"), "a@b.test")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/xml; name=manifest.xml\r\n"+
		"Content-Disposition: attachment; filename=manifest.xml\r\n\r\n<Manifest><From><Email>a@b.test</Email></From>"+
		"<Attachments><Attachment><FileName>x</FileName></Attachment></Attachments></Manifest>\r\n--b--\r\n"), "a@b.test")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/xml; name=manifest.xml\r\n"+
		"Content-Disposition: attachment; filename=manifest.xml\r\n\r\n<Manifest xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\" version=\"2\">"+
		"<MessageHeader><From><Email>a@b.test</Email></From><PromulgationInfo><PromulgationDate>2026/13/40</PromulgationDate></PromulgationInfo></MessageHeader>"+
		"<edXMLManifest version=\"1.0\"><Reference><AttachmentName>x</AttachmentName><Size>-1</Size></Reference></edXMLManifest></Manifest>\r\n--b--\r\n"), "a@b.test")
	f.Fuzz(func(t *testing.T, entity []byte, from string) {
		done := make(chan struct{})
		var m *Manifest
		var err error
		go func() {
			defer close(done)
			m, _, err = checkManifest(&envelope{entity: entity, from: from}, nil, true)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("checkManifest did not return in 10 s")
		}
		var p *problem
		switch {
		case err == nil && m == nil:
			t.Fatal("no manifest and no error")
		case err != nil && !errors.As(err, &p):
			t.Fatalf("error without a reason: %v", err)
		}
	})
}
