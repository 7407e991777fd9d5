package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts a headless Chromium for the test, or skips the test when
// there is none (Debian package chromium).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab opens a new tab of the browser.
func tab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	return ctx
}

// pageText returns the text the page shows.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return text
}

// waitText waits until the page shows every one of words and returns how
// long it took.
func waitText(t *testing.T, ctx context.Context, limit time.Duration, words ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		text := pageText(t, ctx)
		missing := []string{}
		for _, w := range words {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("the page does not show %q within %s; it shows:\n%s", missing, limit, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatusPage drives the status page in a real browser: it renders the
// fleet, follows a registration and a health transition live without a
// reload, explains an answer, and shows no data without the right token.
func TestStatusPage(t *testing.T) {
	b := browser(t)
	d := startDisco(t)
	backend := &httpBackend{addr: "127.0.0.1:0"}
	backend.start(t)
	defer backend.stop()
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080,"tags":["v2"]}`)
	d.register(t, "web", "web-2", fmt.Sprintf(`{"address":"10.0.0.2","port":8080,"checks":[{"type":"http","url":"http://%s/health","interval":"1s","timeout":"500ms","fall":1}]}`, backend.addr))
	d.register(t, "web", "web-3", `{"address":"10.0.0.3","port":8080}`)
	if code, body := d.api(t, "PUT", "/v1/services/web/instances/web-3/maintenance", `{"enabled":true,"reason":"kernel upgrade"}`); code != 200 {
		t.Fatalf("maintenance: %d %s", code, body)
	}
	d.register(t, "db", "db-1", `{"address":"fd00::5","port":5432}`)
	eventually(t, "web-2 passing", 5*time.Second, func() bool {
		_, body := d.api(t, "GET", "/v1/services/web/instances/web-2", "")
		return strings.Contains(body, `"status":"passing"`)
	})

	page := tab(t, b)
	if err := chromedp.Do(page, chromedp.Navigate(d.admin+"/ui/#token="+testToken)); err != nil {
		t.Fatal(err)
	}
	waitText(t, page, 10*time.Second, "web-1", "10.0.0.1:8080", "v2", "passing", "maintenance", "kernel upgrade",
		"[fd00::5]:5432", "web-2", "HTTP 200", "critical → passing")
	hash, err := chromedp.Run(page, chromedp.Evaluate[string](`window.__mark = 42; location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	if hash != "" {
		t.Errorf("the token stays in the address bar: %q", hash)
	}

	// A registration shows within 2 s, without a reload.
	d.register(t, "web", "web-4", `{"address":"10.0.0.4","port":8080}`)
	took := waitText(t, page, 5*time.Second, "web-4", "10.0.0.4:8080")
	if took > 2*time.Second {
		t.Errorf("the registration showed after %s, want within 2s", took)
	}
	t.Logf("registration shown after %s", took)
	// A health transition shows too.
	backend.stop()
	waitText(t, page, 10*time.Second, "web-2: passing → critical")
	if mark, err := chromedp.Run(page, chromedp.Evaluate[int](`window.__mark || 0`)); err != nil || mark != 42 {
		t.Errorf("the page reloaded (mark %d, %v)", mark, err)
	}

	// The explain box asks the DNS server's own code.
	if err := chromedp.Do(page,
		chromedp.SetValue(chromedp.ID("explain-name"), "web.service.disco.internal"),
		chromedp.Click(chromedp.CSS("#explain-form button"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, page, 5*time.Second, "NOERROR", "web.service.disco.internal.\t5\tIN\tA\t10.0.0.1", "left out", "kernel upgrade")

	// A wrong or missing token: a clear message and no data.
	for _, tc := range []struct{ url, say string }{
		{d.admin + "/ui/#token=wrong", "refused this admin token"},
		{d.admin + "/ui/", "needs its admin token"},
	} {
		p := tab(t, b)
		if err := chromedp.Do(p, chromedp.Navigate(tc.url)); err != nil {
			t.Fatal(err)
		}
		waitText(t, p, 5*time.Second, tc.say)
		if text := pageText(t, p); strings.Contains(text, "web-1") || strings.Contains(text, "10.0.0.1") || strings.Contains(text, "services:") {
			t.Errorf("%s shows data:\n%s", tc.url, text)
		}
	}
}

// TestStatusPageManyServices checks that the page stays usable with 1,000
// services: pages of them, and a filter.
func TestStatusPageManyServices(t *testing.T) {
	t.Parallel()
	b := browser(t)
	d := startDisco(t)
	var wg sync.WaitGroup
	names := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range names {
				d.register(t, fmt.Sprintf("svc-%04d", i), "i-1", fmt.Sprintf(`{"address":"10.1.%d.%d","port":80}`, i/250, i%250+1))
			}
		})
	}
	for i := range 1000 {
		names <- i
	}
	close(names)
	wg.Wait()

	page := tab(t, b)
	if err := chromedp.Do(page, chromedp.Navigate(d.admin+"/ui/#token="+testToken)); err != nil {
		t.Fatal(err)
	}
	waitText(t, page, 10*time.Second, "1000 services", "page 1 of 50", "svc-0000", "svc-0019")
	if text := pageText(t, page); strings.Contains(text, "svc-0020") {
		t.Error("the first page shows more than 20 services")
	}
	if err := chromedp.Do(page, chromedp.SendKeys(chromedp.ID("filter"), "svc-0777")); err != nil {
		t.Fatal(err)
	}
	waitText(t, page, 5*time.Second, "svc-0777", "10.1.3.28:80", "page 1 of 1 (1 services)")
	clear := `const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); true`
	if err := chromedp.Do(page, chromedp.Evaluate[chromedp.Void](clear), chromedp.Click(chromedp.ID("next"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, page, 5*time.Second, "page 2 of 50", "svc-0020", "svc-0039")
}
