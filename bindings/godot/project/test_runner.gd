# Headless test of the GDNative binding (godot3-server --path . -s test_runner.gd):
#  1. a greedy generation streamed by polling once per frame equals CHORD_TEST_EXPECTED (the text of
#     `chord generate --temp 0 -n 32` for the same prompt);
#  2. cancel() during a long generation ends it with a CANCELLED error within a few frames;
#  3. the session freed mid-generation does not crash; a new one loads and generates.
# Exits 0 when all pass.
extends SceneTree

var model = OS.get_environment("CHORD_TEST_MODEL")
var session
var phase = 1
var text = ""
var events = 0
var frames = 0

func fail(msg):
	print("FAIL: ", msg)
	quit(1)

func _init():
	session = load("res://chord_session.gdns").new()
	var err = session.load(model)
	if err != "":
		fail(err)
		return
	err = session.start("The three primary colors are", 32, 0.0)
	if err != "":
		fail(err)

func expected():
	var f = File.new()
	f.open(OS.get_environment("CHORD_TEST_EXPECTED"), File.READ)
	var s = f.get_as_text()
	f.close()
	return s.trim_suffix("\n")

func _idle(_delta):
	frames += 1
	if frames > 20000:
		fail("no end after 20000 frames (phase %d)" % phase)
		return
	if phase == 3:
		# Freed while generating: the destructor cancels and joins chord's worker.
		session = null
		var again = load("res://chord_session.gdns").new()
		if again.load(model) != "" or again.start("Hello", 4, 0.0) != "":
			fail("a new session after freeing one")
			return
		phase = 4
		session = again
		return
	for ev in session.poll():
		if phase == 1:
			text += ev["text"]
			if ev["type"] == "done":
				if text != expected():
					fail("greedy text '%s', expected '%s'" % [text, expected()])
					return
				print("ok: greedy text through poll in _idle")
				phase = 2
				events = 0
				session.start("Once upon a time", 400, 0.8)
				return
			if ev["type"] == "error":
				fail(ev["text"])
				return
		elif phase == 2:
			if ev["type"] == "text":
				events += 1
				if events == 5:
					session.cancel()
			elif ev["type"] == "error" and ev["status"] == 17:
				if events > 5 + 8:
					fail("%d events after cancel" % (events - 5))
					return
				print("ok: cancel during _idle (", events - 5, " events after it)")
				session.start("Once upon a time", 400, 0.8)
				phase = 3
				return
			else:
				fail("phase 2 ended with %s" % ev)
				return
		elif phase == 4:
			if ev["type"] == "done":
				print("ok: freed mid-generation, a new session works")
				quit(0)
				return
