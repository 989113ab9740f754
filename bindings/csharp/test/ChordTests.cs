// NUnit 2.6 tests of Chord.cs against a real model: CHORD_TEST_MODEL (SmolLM2-135M-Instruct Q4_1)
// and CHORD_TEST_EXPECTED (the text of `chord generate -m MODEL -p "The three primary colors are"
// --temp 0 -n 32`). Run by nunit-console under the Mono JIT, and by FullAotRunner (the same tests
// called directly) under `mono --full-aot`, which rejects what IL2CPP rejects.
using System;
using System.Collections;
using System.IO;
using System.Text;
using System.Threading;
using Chord;
using NUnit.Framework;

[TestFixture]
public class ChordTests
{
    const string Prompt = "The three primary colors are";

    static Model LoadModel()
    {
        var path = Environment.GetEnvironmentVariable("CHORD_TEST_MODEL");
        Assert.IsNotNull(path, "CHORD_TEST_MODEL is not set (make test-bindings sets it)");
        return Model.Load(path);
    }

    static string Expected()
    {
        return File.ReadAllText(Environment.GetEnvironmentVariable("CHORD_TEST_EXPECTED")).TrimEnd('\n');
    }

    static GenerateParams Greedy(uint n) { return new GenerateParams().Temperature(0).MaxTokens(n); }

    [Test]
    public void GreedyTextInEveryForm()
    {
        string want = Expected();
        using (var m = LoadModel())
        using (var s = new Session(m))
        using (var p = Greedy(32))
        {
            s.Append(Prompt);
            var text = new StringBuilder();
            s.Generate(p, t => { text.Append(t); return true; });
            Assert.AreEqual(want, text.ToString(), "callback");

            s.Reset(); s.Append(Prompt);
            text.Clear();
            s.Start(p);
            ChordEvent ev;
            do { while (!s.TryPoll(out ev, 100)) { } text.Append(ev.Text); } while (!ev.IsFinal);
            Assert.AreEqual(want, text.ToString(), "TryPoll");

            s.Reset(); s.Append(Prompt);
            text.Clear();
            IEnumerator co = s.Coroutine(p, t => text.Append(t));
            while (co.MoveNext()) Thread.Sleep(1);  // a frame each
            Assert.AreEqual(want, text.ToString(), "coroutine");

            s.Reset(); s.Append(Prompt);
            Assert.AreEqual(want, s.GenerateAsync(p, CancellationToken.None).Result, "task");
        }
    }

    [Test]
    public void CancellationStopsWithinAToken()
    {
        using (var m = LoadModel())
        using (var s = new Session(m))
        using (var p = new GenerateParams().MaxTokens(1500).Seed(7).LogitBias((uint)m.Info(8), float.NegativeInfinity))
        {
            s.Append(Prompt);
            int count = 0, atCancel = -1;
            var t = new Thread(() =>
            {
                while (Volatile.Read(ref count) < 5) Thread.Sleep(1);
                s.Cancel();
                Volatile.Write(ref atCancel, Volatile.Read(ref count));
            });
            t.Start();
            var e = Assert.Throws<ChordException>(() => s.Generate(p, x => { Interlocked.Increment(ref count); return true; }));
            t.Join();
            Assert.AreEqual(Status.Cancelled, e.Status);
            Assert.LessOrEqual(count - atCancel, 1, "pieces after the cancel");

            // A CancellationToken cancels the Task form; the session stays usable.
            var cts = new CancellationTokenSource();
            int pieces = 0;
            var progress = new Progress(() => { if (Interlocked.Increment(ref pieces) == 5) cts.Cancel(); });
            var task = s.GenerateAsync(p, cts.Token, progress);
            var ae = Assert.Throws<AggregateException>(() => task.Wait());
            Assert.AreEqual(Status.Cancelled, ((ChordException)ae.InnerException).Status);
            Assert.Greater(s.Append(" And"), 0);
        }
    }

    sealed class Progress : IProgress<string>
    {
        readonly Action onReport;
        public Progress(Action a) { onReport = a; }
        public void Report(string value) { onReport(); }
    }

    [Test]
    public void ErrorsCarryTheStatus()
    {
        var e = Assert.Throws<ChordException>(() => Model.Load("/nonexistent/model.gguf"));
        Assert.AreEqual(Status.Io, e.Status);
        StringAssert.Contains("/nonexistent/model.gguf", e.Message);
        using (var m = LoadModel())
        using (var s = new Session(m))
        using (var p = Greedy(8))
        {
            s.Append(Prompt);
            var thrown = Assert.Throws<InvalidOperationException>(() => s.Generate(p, t => { throw new InvalidOperationException("from the callback"); }));
            Assert.AreEqual("from the callback", thrown.Message);
            int n = s.TokenCount;
            s.Append(" and");
            Assert.Greater(s.TokenCount, n, "usable after the exception");
        }
    }

    [Test]
    public void AbiMismatchNamesBothVersions()
    {
        uint saved = NativeAbi.Get();
        NativeAbi.Set(999);
        try
        {
            var e = Assert.Throws<ChordException>(() => LoadModel());
            StringAssert.Contains("ABI version 999", e.Message);
            StringAssert.Contains("ABI version " + saved + " ", e.Message);
        }
        finally { NativeAbi.Set(saved); }
    }

    [Test]
    public void LogMessagesDuringGarbageCollectionAndHandlesFreed()
    {
        int messages = 0, releasedBefore = Log.Released;
        Log.SetCallback((level, msg) => { GC.Collect(); Interlocked.Increment(ref messages); });
        var collector = new Thread(() => { for (int i = 0; i < 200; i++) { GC.Collect(); Thread.Sleep(1); } });
        collector.Start();
        using (var m = LoadModel()) { }
        collector.Join();
        Log.SetCallback(null);
        Assert.Greater(messages, 0, "log messages");
        Assert.AreEqual(releasedBefore + 1, Log.Released, "the GCHandle freed");
    }
}

/// <summary>The tests are compiled with Chord.cs into one assembly, so they reach its internals.</summary>
static class NativeAbi
{
    public static uint Get() { return Chord.Native.AbiVersion; }
    public static void Set(uint v) { Chord.Native.AbiVersion = v; }
}
