package docker

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// ensureImage makes image:tag present on the engine according to the origin:
//
//   - local: it must already be there; nothing is fetched.
//   - dockerhub: pulled when absent (an image already present is used as it is, like
//     `docker run`'s default pull policy).
//   - a tarball: loaded (`docker load`, for a `docker save` archive) or imported (`docker
//     import`, for a root filesystem archive, as Occopus does with a URL) when absent.
//
// Concurrent creates of one image share a single pull or load.
func (p *Provider) ensureImage(ctx context.Context, res Resource) error {
	ref := res.ImageRef()
	if _, err := p.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return p.apiError("inspect image "+ref, err)
	}
	if res.Origin == OriginLocal {
		return fmt.Errorf("docker image %s is not on the Docker host at %s (origin: local never pulls); build or load it there first, or use origin: dockerhub or the location of an image tarball", ref, p.endpoint)
	}
	_, err, _ := p.images.Do(res.Origin+"\x00"+ref, func() (any, error) {
		if res.Origin == OriginDockerHub {
			return nil, p.pull(ctx, ref)
		}
		return nil, p.fromTarball(ctx, res.Origin, ref)
	})
	if err != nil {
		return err
	}
	if _, err := p.cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker image %s: origin %s did not provide it", ref, res.Origin)
		}
		return p.apiError("inspect image "+ref, err)
	}
	return nil
}

// pull fetches ref from the registry, reading the progress stream to its end because the
// engine reports most failures inside the stream, not in the HTTP status.
func (p *Provider) pull(ctx context.Context, ref string) error {
	p.log.Info("pulling image", "image", ref)
	rc, err := p.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return pullError(ref, err)
	}
	defer func() { _ = rc.Close() }()
	if err := streamError(rc); err != nil {
		return pullError(ref, err)
	}
	return nil
}

// unreachableHints are fragments of the engine's messages when it cannot reach a registry.
var unreachableHints = []string{
	"no such host", "dial tcp", "connection refused", "i/o timeout", "network is unreachable",
	"tls handshake", "timeout exceeded", "deadline exceeded", "server misbehaving", "temporary failure in name resolution",
}

// pullError explains a failed pull, saying plainly when the registry was unreachable.
func pullError(ref string, err error) error {
	msg := strings.ToLower(err.Error())
	for _, h := range unreachableHints {
		if strings.Contains(msg, h) {
			return fmt.Errorf("docker pull image %s (origin: dockerhub): the registry was unreachable from the Docker host; with no registry, use origin: local with an image built or loaded on the host, or origin: file:///path/image.tar: %w", ref, err)
		}
	}
	return fmt.Errorf("docker pull image %s (origin: dockerhub): %w", ref, err)
}

// streamError reads a JSON message stream of the engine (pull, load, import) and returns
// the first error it reports.
func streamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read engine progress: %w", err)
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// fromTarball loads or imports ref from origin.
func (p *Provider) fromTarball(ctx context.Context, origin, ref string) error {
	if strings.HasPrefix(origin, "http://") || strings.HasPrefix(origin, "https://") {
		// The engine downloads the URL itself, as `docker import URL` (Occopus' behaviour).
		p.log.Info("importing image from URL", "image", ref, "url", origin)
		rc, err := p.cli.ImageImport(ctx, image.ImportSource{SourceName: origin}, ref, image.ImportOptions{})
		if err != nil {
			return p.apiError(fmt.Sprintf("import image %s from %s", ref, origin), err)
		}
		defer func() { _ = rc.Close() }()
		if err := streamError(rc); err != nil {
			return fmt.Errorf("docker import image %s from %s: %w", ref, origin, err)
		}
		return nil
	}
	path := strings.TrimPrefix(origin, "file://")
	saved, tags, err := inspectTarball(path)
	if err != nil {
		return fmt.Errorf("docker image %s from %s: %w", ref, origin, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("docker image %s: %w", ref, err)
	}
	defer func() { _ = f.Close() }()
	if !saved {
		p.log.Info("importing root filesystem tarball", "image", ref, "file", path)
		rc, err := p.cli.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, ref, image.ImportOptions{})
		if err != nil {
			return p.apiError(fmt.Sprintf("import image %s from %s", ref, path), err)
		}
		defer func() { _ = rc.Close() }()
		if err := streamError(rc); err != nil {
			return fmt.Errorf("docker import image %s from %s: %w", ref, path, err)
		}
		return nil
	}
	if len(tags) > 0 && !contains(tags, ref) && !contains(tags, "docker.io/library/"+ref) {
		return fmt.Errorf("docker image %s: the archive %s holds %s, not %s; set image and tag to one of those", ref, path, strings.Join(tags, ", "), ref)
	}
	p.log.Info("loading image archive", "image", ref, "file", path)
	resp, err := p.cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return p.apiError(fmt.Sprintf("load image archive %s", path), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := streamError(resp.Body); err != nil {
		return fmt.Errorf("docker load image archive %s: %w", path, err)
	}
	return nil
}

// inspectTarball tells a `docker save` archive (it has manifest.json or repositories at the
// top) from a root filesystem archive, and returns the tags a saved archive holds. Plain
// and gzip-compressed tar files are understood.
func inspectTarball(path string) (saved bool, tags []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, nil, err
	}
	defer func() { _ = f.Close() }()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return false, nil, fmt.Errorf("%s is not a readable gzip file: %w", path, err)
		}
		defer func() { _ = gz.Close() }()
		r = gz
	}
	tr := tar.NewReader(r)
	entries := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if entries == 0 {
				return false, nil, fmt.Errorf("%s is not a tar archive (plain or gzip-compressed): %w", path, err)
			}
			return false, nil, fmt.Errorf("read tar archive %s: %w", path, err)
		}
		entries++
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			var manifest []struct{ RepoTags []string }
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&manifest); err == nil {
				for _, m := range manifest {
					tags = append(tags, m.RepoTags...)
				}
			}
			return true, tags, nil
		case "repositories":
			saved = true
		}
	}
	if entries == 0 {
		return false, nil, fmt.Errorf("%s is an empty tar archive", path)
	}
	return saved, tags, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
