# A node that lets a character speak: it polls its ChordSession once per frame in _process and
# emits signals on the main thread (chord never calls into Godot from its own threads).
extends Node

signal text_received(text)
signal finished(reason)
signal failed(message)

export(String) var model_path = "res://SmolLM2-135M-Instruct.Q4_1.gguf"
var session = preload("res://chord_session.gdns").new()

func _ready():
	var err = session.load(ProjectSettings.globalize_path(model_path))
	if err != "":
		emit_signal("failed", err)
		return
	session.start("The innkeeper greets the traveller:", 48, 0.8)

func _process(_delta):
	for ev in session.poll():
		match ev["type"]:
			"text":
				emit_signal("text_received", ev["text"])
			"done":
				emit_signal("finished", ev["reason"])
			"error":
				emit_signal("failed", ev["text"])

func _exit_tree():
	session.cancel()
