// Package console is the web console every broker serves at /ui: a small
// single-page application (plain HTML, CSS and JavaScript embedded in the
// binary; no build step, nothing fetched from elsewhere) that drives the
// broker's own JSON API (docs/api.md) from the browser with the user's
// bearer token. It therefore sees and does exactly what that token's
// principal may through the API: the console holds no data and no
// privileges of its own. Writes go through the node that served the page,
// which forwards them to the leader (LedgerMQ-Forward: leader).
//
// The console's pages are described in docs/console.md.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui"

// file is one embedded asset with its validator.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Console serves the embedded assets. It is immutable once built and safe
// for concurrent use.
type Console struct {
	files map[string]file // by path below Prefix, e.g. "/app.js"
}

// New loads the embedded assets.
func New() *Console {
	c := &Console{files: map[string]file{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		c.files[strings.TrimPrefix(p, "assets")] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil { // the assets are compiled in: this cannot happen at run time
		panic("console: embedded assets: " + err.Error())
	}
	return c
}

// Handles reports whether path belongs to the console.
func Handles(path string) bool {
	return path == Prefix || strings.HasPrefix(path, Prefix+"/")
}

// contentSecurityPolicy allows only the console's own files and the API
// of the origin that served it: no inline script, no other origin, no
// framing (the console performs writes: no clickjacking).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Serve answers a GET or HEAD of a console path: index.html for the
// application's own paths, the asset otherwise, 404 for what does not
// exist.
func (c *Console) Serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if m := string(ctx.Method()); m != fasthttp.MethodGet && m != fasthttp.MethodHead {
		h.Set("Allow", "GET, HEAD")
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(string(ctx.Path()), Prefix)
	if p == "" {
		ctx.Redirect(Prefix+"/", fasthttp.StatusMovedPermanently)
		return
	}
	if p == "/" {
		p = "/index.html"
	}
	f, ok := c.files[p]
	if !ok {
		ctx.Error("no such console file\n", fasthttp.StatusNotFound)
		return
	}
	h.Set("ETag", f.etag)
	// index.html is always revalidated (it names the other files); the
	// others are revalidated too, cheaply by ETag, so that a new broker
	// version's console is never mixed with an old cached script.
	h.Set("Cache-Control", "no-cache")
	if string(ctx.Request.Header.Peek("If-None-Match")) == f.etag {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(f.ctype)
	ctx.SetBody(f.body)
}
