package relay

import (
	"io"
	"log/slog"
	"mime/quotedprintable"
	"strings"
)

func qpReader(s string) io.Reader { return quotedprintable.NewReader(strings.NewReader(s)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
