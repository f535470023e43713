package signing

import (
	"bytes"
	"fmt"
)

// File is one attached file of a document, decoded.
type File struct {
	Name        string
	ContentType string
	Data        []byte
}

// Contents returns the manifest of a stamped document and its attached
// files, decoded, in the order the message carries them. It does not check
// the seal: the caller reads a copy it verified or sealed itself (a
// register's original).
func Contents(msg []byte) (*Manifest, []File, error) {
	env, err := openSigned(crlf(msg))
	if err != nil {
		return nil, nil, err
	}
	root, err := parsePart(env.entity, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("signed part: %w", err)
	}
	mp, rest, err := xmlPart(root, manifestName)
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	if err := decodeXML(mp, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", manifestName, err)
	}
	var files []File
	for _, p := range attachments(rest) {
		var b bytes.Buffer
		b.Grow(decodedSize(p))
		if err := decodeBody(p.cte(), p.body, &b); err != nil {
			return nil, nil, fmt.Errorf("attachment %q: %w", p.filename(), err)
		}
		files = append(files, File{Name: p.filename(), ContentType: p.mediaType, Data: b.Bytes()})
	}
	return &m, files, nil
}
