"""The on-vehicle service: receiver → time sync → ring buffer → triggers → snapshots → uploads.

Modules, one per pipeline stage: :mod:`vehicle.sources.receiver`, :mod:`vehicle.sources.timesync`,
:mod:`vehicle.buffer.ring_buffer`, :mod:`vehicle.triggers.rules` and :mod:`vehicle.triggers.windows`,
:mod:`vehicle.snapshot.writer`, :mod:`vehicle.upload.queue`, :mod:`vehicle.upload.uploader`; wired by
:mod:`vehicle.recorder` and :mod:`vehicle.service`, started by :mod:`vehicle.cli`. Importing the
package imports none of them, so light users (e.g. the inference process) stay light.
"""
