"""The on-vehicle service: receiver → time sync → ring buffer → triggers → snapshots → uploads.

Modules, one per pipeline stage: :mod:`vehicle.receiver`, :mod:`vehicle.timesync`,
:mod:`vehicle.ring_buffer`, :mod:`vehicle.triggers` and :mod:`vehicle.windows`,
:mod:`vehicle.snapshot_writer`, :mod:`vehicle.upload_queue`, :mod:`vehicle.uploader`; wired by
:mod:`vehicle.recorder` and :mod:`vehicle.service`, started by :mod:`vehicle.cli`. Importing the
package imports none of them, so light users (e.g. the inference process) stay light.
"""
