package signing

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPOCSP checks the transport: a POST of the request with the OCSP
// media type, the body back, and errors for a failing responder.
func TestHTTPOCSP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" || string(body) != "req" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Write([]byte("resp"))
	}))
	defer srv.Close()
	got, err := HTTPOCSP{}.FetchOCSP(srv.URL, []byte("req"))
	if err != nil || !bytes.Equal(got, []byte("resp")) {
		t.Fatalf("FetchOCSP = %q, %v", got, err)
	}
	if _, err := (HTTPOCSP{}).FetchOCSP(srv.URL, []byte("other")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("failing responder: %v", err)
	}
}
