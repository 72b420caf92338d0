"""Data issues from predictions, features and pixels (numpy only, no TensorFlow): likely label
errors (:mod:`.label_errors`), exact and near duplicates across splits (:mod:`.duplicates`),
outliers (:mod:`.outliers`), image quality flags (:mod:`.quality`), gathered for a build by
:func:`reportgen.audit.issues.audit_data`."""
