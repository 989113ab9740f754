// Chord.cs: chord from C# (C# 7.2, Mono and Unity, including IL2CPP and iOS).
//
// P/Invoke over chord.h. Handles are SafeHandles; failures throw ChordException with chord's
// status. Callbacks into C# are static methods marked [MonoPInvokeCallback] reached through one
// static delegate each, with a GCHandle as user_data (IL2CPP and full AOT reject anything else).
// Streaming: Session.Generate (callback on the calling thread), or Session.Start then TryPoll from
// Unity's Update(), the Coroutine enumerator, or GenerateAsync (a Task, with a CancellationToken).
using System;
using System.Collections;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

#if !UNITY_5_3_OR_NEWER
namespace AOT
{
    /// <summary>Marks a static method that native code calls (Unity defines this attribute).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { }
    }
}
#endif

namespace Chord
{
    /// <summary>A chord failure: the status (CHORD_E_*) and chord's message.</summary>
    public sealed class ChordException : Exception
    {
        public uint Status { get; }
        public ChordException(uint status, string message) : base(message) { Status = status; }
    }

    /// <summary>chord.h's statuses, stop reasons and event kinds.</summary>
    public static class Status
    {
        public const uint Ok = 0, InvalidArgument = 1, BufferTooSmall = 2, Io = 4, Unsupported = 14,
            Busy = 16, Cancelled = 17, Grammar = 24;
        public const uint StopEog = 0, StopMaxTokens = 1, StopString = 2, StopCallback = 3, StopContextFull = 4;
    }

    internal static class Native
    {
#if UNITY_IOS && !UNITY_EDITOR
        const string Lib = "__Internal";
#else
        const string Lib = "chord";
#endif
        /// <summary>The ABI version this binding was written for (CHORD_ABI_VERSION).</summary>
        internal static uint AbiVersion = 1;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate uint TextCallback(IntPtr text, UIntPtr len, IntPtr userData);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCallback(uint level, IntPtr message, UIntPtr len, IntPtr userData);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void FreeCallback(IntPtr userData);

        [DllImport(Lib)] internal static extern uint chord_abi_version();
        [DllImport(Lib)] internal static extern uint chord_error_code(IntPtr err);
        [DllImport(Lib)] internal static extern IntPtr chord_error_message(IntPtr err);
        [DllImport(Lib)] internal static extern void chord_error_free(IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_model_load(byte[] path, UIntPtr len, IntPtr opts, out ModelHandle model, out IntPtr err);
        [DllImport(Lib)] internal static extern void chord_model_free(IntPtr model);
        [DllImport(Lib)] internal static extern uint chord_model_info(ModelHandle model, uint key, out ulong value, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_new(ModelHandle model, IntPtr opts, out SessionHandle session, out IntPtr err);
        [DllImport(Lib)] internal static extern void chord_session_free(IntPtr session);
        [DllImport(Lib)] internal static extern void chord_session_cancel(SessionHandle session);
        [DllImport(Lib)] internal static extern uint chord_session_reset(SessionHandle session, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_n_tokens(SessionHandle session, out UIntPtr n, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_append_text(SessionHandle session, byte[] text, UIntPtr len, uint flags, out UIntPtr n, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_generate(SessionHandle session, ParamsHandle p, TextCallback cb, IntPtr userData, out uint reason, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_generate_start(SessionHandle session, ParamsHandle p, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_session_poll(SessionHandle session, uint timeoutMs, out uint ev, out uint token, out uint detail, byte[] buf, UIntPtr cap, out UIntPtr len, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_generate_params_new(out ParamsHandle p, out IntPtr err);
        [DllImport(Lib)] internal static extern void chord_generate_params_free(IntPtr p);
        [DllImport(Lib)] internal static extern uint chord_generate_params_set_max_tokens(ParamsHandle p, uint n, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_generate_params_set_temperature(ParamsHandle p, float t, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_generate_params_set_seed(ParamsHandle p, ulong seed, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_generate_params_add_logit_bias(ParamsHandle p, uint token, float bias, out IntPtr err);
        [DllImport(Lib)] internal static extern uint chord_set_log_callback(LogCallback cb, IntPtr userData, FreeCallback free, out IntPtr err);

        /// <summary>Throws for a failed status, with the error object's message (and frees it).</summary>
        internal static void Check(uint status, IntPtr err)
        {
            if (status == Status.Ok) { chord_error_free(err); return; }
            string msg = err != IntPtr.Zero ? Utf8(chord_error_message(err), -1) : "status " + status;
            chord_error_free(err);
            throw new ChordException(status, msg);
        }

        internal static byte[] Bytes(string s) { return Encoding.UTF8.GetBytes(s ?? ""); }

        /// <summary>UTF-8 at p: len bytes, or up to the NUL when len is -1.</summary>
        internal static string Utf8(IntPtr p, long len)
        {
            if (p == IntPtr.Zero) return "";
            if (len < 0) { len = 0; while (Marshal.ReadByte(p, (int)len) != 0) len++; }
            var b = new byte[len];
            Marshal.Copy(p, b, 0, (int)len);
            return Encoding.UTF8.GetString(b);
        }
    }

    public sealed class ModelHandle : SafeHandle
    {
        public ModelHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.chord_model_free(handle); return true; }
    }

    public sealed class SessionHandle : SafeHandle
    {
        public SessionHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.chord_session_free(handle); return true; }
    }

    public sealed class ParamsHandle : SafeHandle
    {
        public ParamsHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.chord_generate_params_free(handle); return true; }
    }

    /// <summary>A loaded model, shared by any number of sessions and threads.</summary>
    public sealed class Model : IDisposable
    {
        internal readonly ModelHandle Handle;
        Model(ModelHandle h) { Handle = h; }

        /// <summary>Loads a GGUF file; refuses a libchord of another ABI version, naming both.</summary>
        public static Model Load(string path)
        {
            uint lib = Native.chord_abi_version();
            if (lib != Native.AbiVersion)
                throw new ChordException(Status.Unsupported, "libchord has ABI version " + lib +
                    " but this binding was built for ABI version " + Native.AbiVersion);
            var p = Native.Bytes(path);
            ModelHandle h; IntPtr err;
            uint st = Native.chord_model_load(p, (UIntPtr)p.Length, IntPtr.Zero, out h, out err);
            Native.Check(st, err);
            return new Model(h);
        }

        /// <summary>A CHORD_INFO_* value (e.g. 8, the end-of-sequence token).</summary>
        public ulong Info(uint key)
        {
            ulong v; IntPtr err;
            Native.Check(Native.chord_model_info(Handle, key, out v, out err), err);
            return v;
        }

        public void Dispose() { Handle.Dispose(); }
    }

    /// <summary>Generation settings (llama.cpp's defaults: 128 tokens, temperature 0.8).</summary>
    public sealed class GenerateParams : IDisposable
    {
        internal readonly ParamsHandle Handle;
        public GenerateParams()
        {
            IntPtr err;
            Native.Check(Native.chord_generate_params_new(out Handle, out err), err);
        }
        public GenerateParams MaxTokens(uint n) { IntPtr e; Native.Check(Native.chord_generate_params_set_max_tokens(Handle, n, out e), e); return this; }
        public GenerateParams Temperature(float t) { IntPtr e; Native.Check(Native.chord_generate_params_set_temperature(Handle, t, out e), e); return this; }
        public GenerateParams Seed(ulong s) { IntPtr e; Native.Check(Native.chord_generate_params_set_seed(Handle, s, out e), e); return this; }
        /// <summary>Adds bias to a token's logit (float.NegativeInfinity bans it).</summary>
        public GenerateParams LogitBias(uint token, float bias) { IntPtr e; Native.Check(Native.chord_generate_params_add_logit_bias(Handle, token, bias, out e), e); return this; }
        public void Dispose() { Handle.Dispose(); }
    }

    /// <summary>One event of a background generation.</summary>
    public struct ChordEvent
    {
        /// <summary>1 token, 2 done, 3 error (CHORD_EVENT_*).</summary>
        public uint Kind;
        public uint Token;
        /// <summary>The token's text, the text held back until the end, or the error message.</summary>
        public string Text;
        /// <summary>The stop reason (done) or the status (error).</summary>
        public uint Detail;
        public bool IsFinal { get { return Kind != 1; } }
    }

    /// <summary>A context over a model: one thread at a time; Cancel from any thread.</summary>
    public sealed class Session : IDisposable
    {
        readonly SessionHandle handle;
        byte[] pollBuf = new byte[1024];

        public Session(Model model)
        {
            IntPtr err;
            Native.Check(Native.chord_session_new(model.Handle, IntPtr.Zero, out handle, out err), err);
        }

        /// <summary>Tokenizes and evaluates text (special tokens recognised); returns the token count.</summary>
        public int Append(string text)
        {
            var b = Native.Bytes(text);
            UIntPtr n; IntPtr err;
            Native.Check(Native.chord_session_append_text(handle, b, (UIntPtr)b.Length, 3, out n, out err), err);
            return (int)n;
        }

        public void Reset() { IntPtr err; Native.Check(Native.chord_session_reset(handle, out err), err); }

        public int TokenCount { get { UIntPtr n; IntPtr err; Native.Check(Native.chord_session_n_tokens(handle, out n, out err), err); return (int)n; } }

        /// <summary>Stops the running call within a token. Any thread.</summary>
        public void Cancel() { Native.chord_session_cancel(handle); }

        // The one delegate native code calls for text, kept alive by this static field.
        static readonly Native.TextCallback TextThunk = OnText;

        sealed class TextSink { public Func<string, bool> Fn; public Exception Error; }

        [AOT.MonoPInvokeCallback(typeof(Native.TextCallback))]
        static uint OnText(IntPtr text, UIntPtr len, IntPtr userData)
        {
            var sink = (TextSink)GCHandle.FromIntPtr(userData).Target;
            try { return sink.Fn(Native.Utf8(text, (long)len)) ? 1u : 0u; }
            catch (Exception e) { sink.Error = e; return 0; }  // never across the native frames
        }

        /// <summary>Generates on this thread, calling onText with whole UTF-8 pieces (false stops).
        /// An exception from onText stops the generation and is rethrown here. Returns the stop reason.</summary>
        public uint Generate(GenerateParams p, Func<string, bool> onText)
        {
            var sink = new TextSink { Fn = onText };
            var gc = GCHandle.Alloc(sink);
            try
            {
                uint reason; IntPtr err;
                uint st = Native.chord_session_generate(handle, p.Handle, TextThunk, GCHandle.ToIntPtr(gc), out reason, out err);
                if (sink.Error != null) { Native.chord_error_free(err); throw sink.Error; }
                Native.Check(st, err);
                return reason;
            }
            finally { gc.Free(); }
        }

        /// <summary>Starts generating on chord's thread; TryPoll delivers the events.</summary>
        public void Start(GenerateParams p)
        {
            IntPtr err;
            Native.Check(Native.chord_session_generate_start(handle, p.Handle, out err), err);
        }

        /// <summary>The next event if one is ready (for Update(): never waits), waiting up to timeoutMs otherwise.</summary>
        public bool TryPoll(out ChordEvent ev, uint timeoutMs = 0)
        {
            ev = default(ChordEvent);
            for (;;)
            {
                uint kind, token, detail; UIntPtr len; IntPtr err;
                uint st = Native.chord_session_poll(handle, timeoutMs, out kind, out token, out detail, pollBuf, (UIntPtr)pollBuf.Length, out len, out err);
                if (st == Status.BufferTooSmall) { Native.chord_error_free(err); pollBuf = new byte[(int)len]; continue; }
                Native.Check(st, err);
                if (kind == 0) return false;
                ev = new ChordEvent { Kind = kind, Token = token, Detail = detail, Text = Encoding.UTF8.GetString(pollBuf, 0, (int)len) };
                return true;
            }
        }

        /// <summary>A coroutine (StartCoroutine in Unity): starts the generation and yields once per
        /// frame, handing each piece of text to onText, until the end.</summary>
        public IEnumerator Coroutine(GenerateParams p, Action<string> onText)
        {
            Start(p);
            for (;;)
            {
                ChordEvent ev;
                while (TryPoll(out ev))
                {
                    if (ev.Text.Length > 0 && ev.Kind != 3) onText(ev.Text);
                    if (ev.IsFinal)
                    {
                        if (ev.Kind == 3) throw new ChordException(ev.Detail, ev.Text);
                        yield break;
                    }
                }
                yield return null;
            }
        }

        /// <summary>Generates on chord's thread and completes with the text; the token cancels it
        /// (the task then faults with a ChordException whose Status is Cancelled).</summary>
        public Task<string> GenerateAsync(GenerateParams p, CancellationToken token, IProgress<string> progress = null)
        {
            Start(p);
            return Task.Run(() =>
            {
                var text = new StringBuilder();
                using (token.Register(Cancel))
                {
                    for (;;)
                    {
                        ChordEvent ev;
                        if (!TryPoll(out ev, 100)) continue;
                        if (ev.Kind == 3) throw new ChordException(ev.Detail, ev.Text);
                        text.Append(ev.Text);
                        if (progress != null && ev.Text.Length > 0) progress.Report(ev.Text);
                        if (ev.IsFinal) return text.ToString();
                    }
                }
            });
        }

        public void Dispose() { handle.Dispose(); }
    }

    /// <summary>chord's log messages, delivered to a C# function (from chord's threads).</summary>
    public static class Log
    {
        static readonly Native.LogCallback LogThunk = OnLog;
        static readonly Native.FreeCallback FreeThunk = OnFree;
        static int freed;

        /// <summary>How many GCHandles chord has released (for tests).</summary>
        public static int Released { get { return Volatile.Read(ref freed); } }

        [AOT.MonoPInvokeCallback(typeof(Native.LogCallback))]
        static void OnLog(uint level, IntPtr message, UIntPtr len, IntPtr userData)
        {
            var fn = (Action<uint, string>)GCHandle.FromIntPtr(userData).Target;
            try { fn(level, Native.Utf8(message, (long)len)); } catch (Exception) { }
        }

        [AOT.MonoPInvokeCallback(typeof(Native.FreeCallback))]
        static void OnFree(IntPtr userData)
        {
            GCHandle.FromIntPtr(userData).Free();
            Interlocked.Increment(ref freed);
        }

        /// <summary>Installs fn (null removes it); the previous one is released when chord is done with it.</summary>
        public static void SetCallback(Action<uint, string> fn)
        {
            IntPtr err;
            if (fn == null) { Native.Check(Native.chord_set_log_callback(null, IntPtr.Zero, null, out err), err); return; }
            var gc = GCHandle.Alloc(fn);
            uint st = Native.chord_set_log_callback(LogThunk, GCHandle.ToIntPtr(gc), FreeThunk, out err);
            if (st != Status.Ok) gc.Free();
            Native.Check(st, err);
        }
    }
}
