// Package web embeds Parley's built-in videoconference app and device test: the files `make web`
// puts in dist/ (index.html, test.html, assets/ with the OpenVidu browser SDK). dist/ is a build
// output and is not committed, except a placeholder so that a clean clone builds and tests before
// `make web`; the app package then serves a page saying how to build the app.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Files returns the built app, rooted at dist/.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a constant that go:embed has already checked
	}
	return sub
}
