package chord

// Tests against a real model: CHORD_TEST_MODEL is SmolLM2-135M-Instruct Q4_1, CHORD_TEST_EXPECTED
// the text of `chord generate -m MODEL -p "The three primary colors are" --temp 0 -n 32` (stdout).
// `make test-bindings` runs them with -race and GODEBUG=cgocheck=2.

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const prompt = "The three primary colors are"

func load(t *testing.T) *Model {
	t.Helper()
	path := os.Getenv("CHORD_TEST_MODEL")
	if path == "" {
		t.Fatal("CHORD_TEST_MODEL is not set (make test-bindings sets it)")
	}
	m, err := LoadModel(path, WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func greedy(n int) Params {
	p := DefaultParams()
	p.Temperature = 0
	p.MaxTokens = n
	return p
}

func expected(t *testing.T) string {
	b, err := os.ReadFile(os.Getenv("CHORD_TEST_EXPECTED"))
	if err != nil {
		t.Fatalf("CHORD_TEST_EXPECTED: %v", err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func TestGreedyCallbackAndStream(t *testing.T) {
	m := load(t)
	defer m.Close()
	s, err := m.NewSession(512)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := expected(t)
	if _, err := s.Append(prompt); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if _, err := s.Generate(context.Background(), greedy(32), func(text string) bool {
		got.WriteString(text)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Fatalf("callback form: %q, want %q", got.String(), want)
	}

	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(prompt); err != nil {
		t.Fatal(err)
	}
	events, err := s.Stream(context.Background(), greedy(32))
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	var last Event
	for ev := range events {
		got.WriteString(ev.Text)
		last = ev
	}
	if !last.Done || last.Err != nil {
		t.Fatalf("last event %+v", last)
	}
	if got.String() != want {
		t.Fatalf("stream form: %q, want %q", got.String(), want)
	}
}

// A context cancelled from another goroutine stops a long generation within one token; the
// session stays usable; no goroutine is left behind; every handle is freed.
func TestCancelByContext(t *testing.T) {
	before := runtime.NumGoroutine()
	m := load(t)
	s, err := m.NewSession(2048)
	if err != nil {
		t.Fatal(err)
	}
	eos, err := m.EOS()
	if err != nil {
		t.Fatal(err)
	}
	long := DefaultParams()
	long.MaxTokens = 1500
	long.LogitBias = map[uint32]float32{eos: float32(math.Inf(-1))}
	if _, err := s.Append(prompt); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var count, atCancel int64 = 0, -1
	var once sync.Once
	_, err = s.Generate(ctx, long, func(string) bool {
		if atomic.AddInt64(&count, 1) == 5 {
			once.Do(func() {
				go func() { cancel(); atomic.StoreInt64(&atCancel, atomic.LoadInt64(&count)) }()
			})
		}
		return true
	})
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("err %v, want ErrCancelled", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusCancelled {
		t.Fatalf("errors.As: %v", err)
	}
	for atomic.LoadInt64(&atCancel) < 0 {
		time.Sleep(time.Millisecond)
	}
	if after := atomic.LoadInt64(&count) - atomic.LoadInt64(&atCancel); after > 1 {
		t.Fatalf("%d pieces after the cancel", after)
	}

	// The stream form: cancelled by its context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	events, err := s.Stream(ctx2, long)
	if err != nil {
		t.Fatalf("the session is not usable after a cancel: %v", err)
	}
	n := 0
	var last Event
	for ev := range events {
		if !ev.Done {
			n++
			if n == 5 {
				cancel2()
			}
		}
		last = ev
	}
	if !errors.Is(last.Err, ErrCancelled) {
		t.Fatalf("stream ended with %+v", last)
	}
	if _, err := s.Append(" And"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m.Close()
	if LiveHandles() != 0 {
		t.Fatalf("%d chord handles alive after Close", LiveHandles())
	}
	time.Sleep(100 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}

func TestErrors(t *testing.T) {
	_, err := LoadModel("/nonexistent/model.gguf")
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "/nonexistent/model.gguf") {
		t.Fatalf("load: %v", err)
	}
	m := load(t)
	defer m.Close()
	s, err := m.NewSession(256)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append("x"); err == nil {
		t.Fatal("a closed session appended")
	}
	// A panic in the callback stops the generation and comes out of Generate, not through C.
	s2, _ := m.NewSession(256)
	defer s2.Close()
	s2.Append(prompt)
	func() {
		defer func() {
			if r := recover(); r != "from the callback" {
				t.Fatalf("recovered %v", r)
			}
		}()
		s2.Generate(context.Background(), greedy(8), func(string) bool { panic("from the callback") })
	}()
	if _, err := s2.Append(" and"); err != nil {
		t.Fatalf("unusable after a callback panic: %v", err)
	}
}

// The binding built for another ABI version refuses the library, naming both versions.
func TestABIMismatch(t *testing.T) {
	saved := abiVersion
	abiVersion = 999
	defer func() { abiVersion = saved }()
	_, err := LoadModel(os.Getenv("CHORD_TEST_MODEL"))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "ABI version 999") ||
		!strings.Contains(err.Error(), "ABI version 1 ") {
		t.Fatalf("err %v", err)
	}
}

// Log messages arrive through the callback (from chord's threads) while the GC runs.
func TestLogCallback(t *testing.T) {
	var n int64
	if err := SetLogCallback(func(level uint32, msg string) {
		if msg != "" {
			atomic.AddInt64(&n, 1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	m := load(t)
	m.Close()
	runtime.GC()
	if err := SetLogCallback(nil); err != nil {
		t.Fatal(err)
	}
	if atomic.LoadInt64(&n) == 0 {
		t.Fatal("no log messages during a model load")
	}
}
