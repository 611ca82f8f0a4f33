package template

import (
	"container/list"
	"sync"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Cache bounds besides the entry count: a parsed template takes several times its source's
// size, so large sources are not kept and the sources kept are bounded in total.
const (
	maxCachedSource = 1 << 20
	maxCachedBytes  = 32 << 20
)

// parseCache is a bounded LRU of parsed templates keyed by source. Parsed templates are
// read-only once rewritten, so one can be executed by many renders at once.
type parseCache struct {
	mu    sync.Mutex
	max   int
	bytes int
	order *list.List // front = most recently used; values are *cacheEntry
	items map[string]*list.Element
}

type cacheEntry struct {
	src string
	t   *exec.Template
}

func newParseCache(max int) *parseCache {
	return &parseCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *parseCache) get(src string) (*exec.Template, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[src]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).t, true
}

func (c *parseCache) put(src string, t *exec.Template) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(src) > maxCachedSource {
		return
	}
	if el, ok := c.items[src]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[src] = c.order.PushFront(&cacheEntry{src: src, t: t})
	c.bytes += len(src)
	for c.order.Len() > c.max || c.bytes > maxCachedBytes {
		last := c.order.Back()
		c.order.Remove(last)
		src := last.Value.(*cacheEntry).src
		c.bytes -= len(src)
		delete(c.items, src)
	}
}

func (c *parseCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
